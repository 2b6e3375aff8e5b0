"""A release written by the real pipeline for the consumer tests: every split, diagnoses with
quotes in them, pairs without one, edited VQA answers (the preferences) in train and the rest."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

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
