"""The dev set's cutting: sample sheets split on their white gutters, slides into tiles, and the
manifest keeps every source repository in one split and away from the evaluation's."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from curation.extract.modality import devset

HELD_FOR_EVALUATION = {
    "MinhKemm/DermNet_Dataset", "thisismexp/artefact_insertion", "ImageMarkup/isic",
    "ImageMarkup/isic-archive", "ytworks/ColorConstancy", "Francode77/hair_removal_ham10000",
    "histolab/histolab", "labcin-ufes/PAD-UFES-20", "scikit-image/scikit-image",
}  # fmt: skip


def _sheet() -> Image.Image:
    """A white sheet with a title strip and a 2 x 3 grid of photographs."""
    img = Image.new("RGB", (640, 420), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 5), "Original images", fill="black")
    for r in range(2):
        for c in range(3):
            x, y = 20 + c * 205, 40 + r * 185
            d.rectangle((x, y, x + 190, y + 170), fill=(200 - 30 * c, 140 + 20 * r, 120))
    return img


def test_a_sample_sheet_splits_into_its_photographs():
    pieces = devset.gutter_split(_sheet())
    assert len(pieces) == 6
    assert all(abs(p.width - 191) <= 2 and abs(p.height - 171) <= 2 for p in pieces)


def test_tiles_leave_out_bare_glass():
    img = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(img).rectangle((0, 0, 149, 299), fill=(200, 120, 180))
    assert len(devset.tiles(img, 2, 2)) == 2


def test_cut_refuses_an_unknown_kind():
    buf = io.BytesIO()
    _sheet().save(buf, "PNG")
    assert len(devset.cut({"cut": {"kind": "grid"}}, buf.getvalue())) == 6
    with pytest.raises(ValueError, match="unknown cut kind"):
        devset.cut({"cut": {"kind": "zigzag"}}, buf.getvalue())


def test_manifest_splits_by_source_and_avoids_the_evaluation_sources():
    entries = devset.manifest()["entries"]
    splits: dict[str, set[str]] = {}
    for e in entries:
        splits.setdefault(e["repo"], set()).add(e["split"])
        assert e["licence"] and len(e["commit"]) == 40
        assert e["class"] in {"clinical", "dermoscopic", "pathological", "other"}
    assert all(len(s) == 1 for s in splits.values())
    assert not set(splits) & HELD_FOR_EVALUATION
    assert not any(r.startswith("sarah-antillia/") for r in splits)
    assert {e["split"] for e in entries} == {"dev", "heldout"}
