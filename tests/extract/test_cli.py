from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from curation.samplebook import bad_pdfs

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "curation.extract", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_writes_figures_json(small_book, tmp_path):
    path, gold = small_book
    out = tmp_path / "out"
    res = _run(path, "--out", out, "--dpi", 100)
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "figures.json").read_text())
    assert doc["page_count"] == gold.page_count
    assert len(doc["figures"]) == len(gold.figures)
    fig = doc["figures"][0]
    for key in (
        "label",
        "page",
        "bbox",
        "caption",
        "caption_bbox",
        "image",
        "panels",
        "modality",
        "modality_confidence",
        "mentions",
        "section",
        "diagnosis",
        "age",
        "sex",
        "flags",
    ):
        assert key in fig
    assert (out / fig["image"]).is_file()
    assert all((out / p["image"]).is_file() for p in fig["panels"])


def test_cli_rejects_bad_pdf(tmp_path):
    bad = bad_pdfs.write_encrypted(tmp_path / "locked.pdf")
    res = _run(bad, "--out", tmp_path / "out")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "password" in lines[0]
