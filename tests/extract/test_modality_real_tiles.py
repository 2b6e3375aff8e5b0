"""On real slides (OpenSlide test data, tests/data/modality/README.md): stain deconvolution finds
DAB in the immunohistochemistry tile and not in the H&E one, and both are pathology."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from curation.extract.modality import features as feats
from curation.extract.modality import model as mm

DATA = Path(__file__).resolve().parents[1] / "data" / "modality"


def _load(name: str) -> Image.Image:
    with Image.open(DATA / name) as im:
        return im.convert("RGB")


def test_dab_separates_immunohistochemistry_from_h_and_e():
    he = dict(zip(feats.NAMES, feats.features(_load("openslide_os1_he_tile.png")), strict=True))
    ihc = dict(zip(feats.NAMES, feats.features(_load("openslide_os2_ki67_tile.png")), strict=True))
    assert ihc["hed_d_p90"] > he["hed_d_p90"]
    assert he["hed_e_mean"] > ihc["hed_e_mean"]


def test_real_slides_are_called_pathology():
    m = mm.shipped()
    for name in ("openslide_os1_he_tile.png", "openslide_os2_ki67_tile.png"):
        p = m.predict(_load(name))
        assert p.label == "pathological", (name, p.probabilities)
