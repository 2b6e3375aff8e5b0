"""A release written by the real pipeline for the consumer tests: every split, diagnoses with
quotes in them, pairs without one, edited VQA answers (the preferences) in train and the rest."""

from __future__ import annotations

import ast
import hashlib
import io
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from curation.release import (
    BookInfo,
    GroupInfo,
    PairRecord,
    ReleaseMeta,
    SplitConfig,
    VQARecord,
    assign_splits,
    build,
)

VENDOR = Path(__file__).resolve().parent / "vendor"
DIAGNOSES = ["Melanoma", "Becker's naevus", 'Nevus "halo" type', "Psoriasis"]
MODALITIES = ["clinical", "dermoscopic", "pathological"]
N_PAIRS = 40


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((30, 42, 3)) * 255).astype("uint8")).save(buf, "PNG")
    return buf.getvalue()


def make_release(workdir: Path) -> Path:
    """Build the release into ``workdir``; return its root (``workdir/release``)."""
    store: dict[str, bytes] = {}
    pairs = []
    for i in range(1, N_PAIRS + 1):
        data = _png(i)
        sha = hashlib.sha256(data).hexdigest()
        image = f"crops/{sha[:2]}/{sha}.png"
        store[image] = data
        diagnosis = "" if i % 9 == 0 else DIAGNOSES[i % len(DIAGNOSES)]
        vqa = [
            VQARecord(i * 10, i, "diagnosis", "What is the most likely diagnosis?",
                      diagnosis or "Unclear", "accepted", draft_answer=diagnosis or "Unclear"),
            VQARecord(i * 10 + 1, i, "site", "Where on the body is the lesion?",
                      "On the back.", "edited" if i % 2 else "accepted",
                      draft_answer="On the arm." if i % 2 else "On the back."),
        ]  # fmt: skip
        pairs.append(
            PairRecord(
                id=i, image=image, caption=f"Fig. 3.{i} ({'ab'[i % 2]}) {diagnosis} (arrows).",
                modality=MODALITIES[i % 3], book=BookInfo(1 + i % 2, f"Atlas {i % 2}", "1st"),
                page=i, figure_id=i, figure_label=f"3.{i}", panel_index=0, diagnosis=diagnosis,
                age=20 + i, sex=("female", "male", "")[i % 3], vqa=tuple(vqa),
            )
        )  # fmt: skip
    config = SplitConfig(seed=5, ratios={"train": 0.6, "val": 0.2, "test": 0.2})
    splits = assign_splits(
        [GroupInfo(p.id, p.figure_id, str(p.book.id), p.modality) for p in pairs], config
    )
    meta = ReleaseMeta(
        name="mmskin", version="1.0.0", created_at="2026-03-04T05:06:07+00:00",
        created_by="curator", filter={}, split=config.as_dict(),
    )  # fmt: skip
    build(workdir, meta, pairs, splits, lambda path: io.BytesIO(store[path]))
    return workdir / "release"


def load_llamafactory(
    names: list[str], dataset_dir: Path, media_dir: Path, cache_dir: Path, monkeypatch
) -> dict[str, list[dict]]:
    """Each dataset of ``dataset_info.json`` as LLaMA-Factory's pinned loader aligns it.

    ``parser.get_dataset_list`` reads the registry, ``loader._load_single_dataset`` loads the
    file with ``datasets`` and aligns it (``converter``: roles, and each image path joined to
    ``media_dir`` when that names a file). Every row is checked the way LLaMA-Factory's
    multimodal plugin and processors need it; the rows are returned.
    """
    monkeypatch.syspath_prepend(str(VENDOR / "llamafactory"))
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.extras.constants import IMAGE_PLACEHOLDER

    data_args = SimpleNamespace(
        dataset_dir=str(dataset_dir), media_dir=str(media_dir), streaming=False,
        preprocessing_num_workers=None, overwrite_cache=True, max_samples=None,
    )  # fmt: skip
    model_args = SimpleNamespace(cache_dir=str(cache_dir), hf_hub_token=None)
    training_args = SimpleNamespace(local_process_index=0, dataloader_num_workers=0)
    loaded = {}
    for name, attr in zip(names, get_dataset_list(names, str(dataset_dir)), strict=True):
        rows = list(_load_single_dataset(attr, model_args, data_args, training_args))
        for row in rows:
            assert row["_prompt"], f"LLaMA-Factory skipped a row of {name}"
            assert row["_prompt"][0]["role"] == "user"
            placeholders = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in row["_prompt"])
            assert placeholders == len(row["_images"]) == 1
            # media_dir joined to each path and naming a file (else LLaMA-Factory keeps the
            # path as written, with a warning, and training fails to open it).
            images = row["_images"]
            assert all(p.startswith(str(media_dir)) and os.path.isfile(p) for p in images), row
            assert len(row["_response"]) == (2 if attr.ranking else 1)
        loaded[name] = rows
    return loaded


_LLAVA_SKIPPED_IMPORTS = {"llava.train.llava_trainer", "llava.model"}  # need old transformers
_LLAVA_DATA_CODE = {
    "DataArguments", "rank0_print", "_tokenize_fn", "_mask_targets", "_add_speaker_and_signal",
    "preprocess_multimodal", "preprocess_llama_2", "preprocess_v1", "preprocess_mpt",
    "preprocess_plain", "preprocess", "LazySupervisedDataset", "DataCollatorForSupervisedDataset",
    "local_rank", "IS_TOKENIZER_GREATER_THAN_0_14",
}  # fmt: skip


def llava_data_module(monkeypatch) -> dict:
    """LLaVA's data definitions, executed unchanged from the pinned train.py."""
    monkeypatch.syspath_prepend(str(VENDOR / "llava"))
    path = VENDOR / "llava" / "llava" / "train" / "train.py"
    tree = ast.parse(path.read_text("utf-8"))
    body = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if getattr(node, "module", None) not in _LLAVA_SKIPPED_IMPORTS:
                body.append(node)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Assign):
            names = {getattr(node, "name", None)}
            names |= {t.id for t in getattr(node, "targets", ()) if isinstance(t, ast.Name)}
            if names & _LLAVA_DATA_CODE:
                body.append(node)
    module = types.ModuleType("llava_train_data")  # a real module: dataclasses look it up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), module.__dict__)
    assert module.__dict__.keys() >= _LLAVA_DATA_CODE
    return module.__dict__
