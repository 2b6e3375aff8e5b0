"""Fixtures for the ml tests: a release folder written by the test and tiny local models."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DIAGNOSES = ["melanoma", "psoriasis", "basal cell carcinoma", "nevus"]
MODALITIES = ["clinical", "dermoscopic", "pathological"]


def _png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arr = (rng.random((48, 64, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(path, format="PNG")


def write_release(root: Path, n_pairs: int = 12, seed: int = 0) -> Path:
    """A small release in the DESIGN.md layout, with a manifest that verifies."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    pairs, vqa, prefs = [], [], []
    for i in range(n_pairs):
        tmp = root / "tmp.png"
        _png(tmp, seed * 1000 + i)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        rel = f"images/{digest[:2]}/{digest}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(root / rel)
        dx = DIAGNOSES[i % len(DIAGNOSES)]
        modality = MODALITIES[i % len(MODALITIES)]
        split = "test" if i % 4 == 3 else "train"
        pid = f"p{i}"
        pairs.append(
            {
                "id": pid,
                "image": rel,
                "caption": f"A {modality} image of {dx} on the arm of an adult.",
                "modality": modality,
                "diagnosis": dx,
                "age": 30 + i,
                "sex": rng.choice(["female", "male"]),
                "split": split,
                "provenance": {"book": "b1", "page": i + 1, "figure": f"Fig. {i}", "panel": "a"},
            }
        )
        vqa.append(
            {
                "id": f"v{i}a",
                "pair_id": pid,
                "image": rel,
                "question_type": "diagnosis",
                "question": "What is the most likely diagnosis?",
                "answer": f"The most likely diagnosis is {dx}.",
                "split": split,
            }
        )
        vqa.append(
            {
                "id": f"v{i}b",
                "pair_id": pid,
                "image": rel,
                "question_type": "closed",
                "question": f"Is this lesion {DIAGNOSES[0]}?",
                "answer": "yes" if dx == DIAGNOSES[0] else "no",
                "split": split,
            }
        )
        prefs.append(
            {
                "pair_id": pid,
                "image": rel,
                "prompt": "What is the most likely diagnosis?",
                "chosen": f"The most likely diagnosis is {dx}.",
                "rejected": "The image shows a rash of unclear cause.",
                "source": "expert_edit",
            }
        )
    for name, rows in (("pairs.jsonl", pairs), ("vqa.jsonl", vqa), ("preferences.jsonl", prefs)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            data = path.read_bytes()
            files[str(path.relative_to(root))] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
    manifest = {
        "name": "fixture",
        "version": 1,
        "schema_version": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "created_by": "tests",
        "filter": {},
        "counts": {"pairs": len(pairs), "vqa": len(vqa), "preferences": len(prefs)},
        "split": {"rule": "by figure and book", "seed": seed},
        "parent": None,
        "files": files,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


def release_texts(root: Path) -> list[str]:
    """All text in a release, to train the tiny tokenizer on."""
    texts = []
    for name in ("pairs.jsonl", "vqa.jsonl", "preferences.jsonl"):
        for line in (root / name).read_text("utf-8").splitlines():
            row = json.loads(line)
            texts.extend(str(v) for v in row.values() if isinstance(v, str))
    return texts


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory) -> Path:
    """A verified fixture release, shared read-only by the session."""
    return write_release(tmp_path_factory.mktemp("release") / "r1")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory, release_dir) -> dict[str, Path]:
    """Tiny LLaVA and Qwen2.5-VL checkpoints on disk, loaded like real ones."""
    from ml.tiny import TINY_FAMILIES, save_tiny

    out = {}
    texts = release_texts(release_dir)
    for family in TINY_FAMILIES:
        path = tmp_path_factory.mktemp(f"tiny-{family}")
        save_tiny(family, path, texts)
        out[family] = path
    return out


@pytest.fixture(scope="session", params=["llava", "qwen2_5_vl"])
def family(request) -> str:
    """Each tiny family in turn."""
    return request.param


TINY_CONFIG = Path(__file__).resolve().parents[2] / "ml" / "configs" / "tiny_cpu.yaml"


def run_stage(stage: str, model_dir: Path, release: Path, out: Path, *extra: str) -> int:
    """`python -m ml train` in-process with the tiny CPU config."""
    from ml.cli import main

    args = ["train", "--stage", stage, "--config", str(TINY_CONFIG)]
    for item in (
        f"model.path={model_dir}",
        f"data.release={release}",
        f"train.output_dir={out}",
        *extra,
    ):
        args += ["--set", item]
    return main(args)


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory, tiny_model_dirs, release_dir, family) -> Path:
    """One SFT run per family, shared by the SFT and DPO tests."""
    out = tmp_path_factory.mktemp(f"sft-{family}")
    rc = run_stage(
        "sft", tiny_model_dirs[family], release_dir, out, "train.max_steps=12", "train.lr=1e-2"
    )
    assert rc == 0
    return out


# -- the platform, for pull and worker tests (live server; the tests import Django, ml never) ---
def _platform_png(seed: int) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    arr = (rng.random((32, 40, 3)) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def platform_release(make_user, eager_celery):
    """A small reviewed book cut into a ready release by the platform's own release service."""
    from curation.models import Figure, Page, Pair, Panel, Release, Textbook, VQAItem
    from curation.services import releases as release_service
    from curation.services.storage import store_bytes

    curator = make_user("curator1", "curator")
    book = Textbook.objects.create(
        title="Atlas", sha256="a" * 64, file="books/a.pdf", size_bytes=1, page_count=20,
        status="done",
    )  # fmt: skip
    for i in range(10):
        dx, modality = DIAGNOSES[i % len(DIAGNOSES)], MODALITIES[i % len(MODALITIES)]
        page = Page.objects.create(textbook=book, number=i + 1, width=600, height=800)
        figure = Figure.objects.create(
            textbook=book, page=page, label=f"1.{i}", bbox=[0, 0, 1, 1],
            caption=f"Fig. 1.{i} {dx}.", image=store_bytes(_platform_png(i), prefix="crops",
                                                            ext="png"),
        )  # fmt: skip
        panel = Panel.objects.create(
            figure=figure, index=0, letter="", bbox=[0, 0, 1, 1],
            image=store_bytes(_platform_png(100 + i), prefix="crops", ext="png"),
        )  # fmt: skip
        pair = Pair.objects.create(
            panel=panel, textbook=book, status="accepted", modality=modality,
            text=f"A {modality} image of {dx} on the arm.", diagnosis=dx, age=30 + i,
            sex="female",
        )  # fmt: skip
        question = "What is the most likely diagnosis?"
        VQAItem.objects.create(
            pair=pair, question_type="diagnosis", question=question,
            answer=f"The most likely diagnosis is {dx}.", status="edited" if i % 2 else "accepted",
            generator={"model": "test-llm"}, prompt_version="v1",
            draft={"question": question, "answer": "A rash of unclear cause."},
        )  # fmt: skip
        VQAItem.objects.create(
            pair=pair, question_type="closed", question="Is this lesion melanoma?",
            answer="yes" if dx == "melanoma" else "no", status="accepted",
            generator={"model": "test-llm"}, prompt_version="v1",
            draft={"question": "Is this lesion melanoma?", "answer": "yes"},
        )  # fmt: skip
    release = release_service.create_release(
        name="skin", version="1.0.0", user=curator,
        split={"rule": "figure", "seed": 0, "ratios": {"train": 0.7, "test": 0.3}},
    )  # fmt: skip
    release.refresh_from_db()
    if release.status != Release.Status.READY:  # the build ran inline (eager Celery) or not yet
        release_service.run_build(release.pk, release.build_token)
        release.refresh_from_db()
    assert release.status == Release.Status.READY, release.error
    return release


@pytest.fixture
def worker_token(make_user) -> str:
    """The API token of an ml_worker account."""
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=make_user("gpu1", "ml_worker")).key
