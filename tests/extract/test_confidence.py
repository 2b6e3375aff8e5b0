"""Extraction confidence: each doubt, its cost, and the whole-figure fallback."""

from __future__ import annotations

import io
import json

import pymupdf
import pytest
from PIL import Image

from curation.extract import extract_book
from curation.extract.__main__ import main as cli_main
from curation.extract.confidence import (
    PENALTY,
    assess,
    caption_gap,
    garbled,
    score,
)
from curation.extract.model import FigureInfo, PanelInfo
from curation.extract.validate import check_figures_json


def _panel(i, letter, box, modality="clinical", conf=0.7):
    return PanelInfo(i, letter, box, "", b"p%d" % i, modality, conf)


def _figure(
    caption="Fig. 1.1 Psoriasis on the elbow of a 40-year-old man.",
    panels=None,
    bbox=(72.0, 100.0, 372.0, 300.0),
    caption_bbox=(72.0, 308.0, 372.0, 330.0),
    flags=(),
    page=1,
    caption_page=1,
):
    panels = panels or [_panel(0, None, bbox)]
    return FigureInfo(
        label="1.1",
        page=page,
        bbox=bbox,
        caption=caption,
        caption_bbox=caption_bbox,
        image_png=b"whole",
        panels=panels,
        modality="clinical",
        modality_confidence=0.7,
        section=[],
        diagnosis="",
        age=None,
        sex=None,
        flags=list(flags),
        caption_page=caption_page,
    )


def test_a_clean_figure_is_fully_trusted():
    fig = assess(_figure())
    assert fig.confidence == 1.0 and fig.doubts == []
    assert fig.panels[0].confidence == 1.0 and fig.panels[0].doubts == []


def test_caption_far():
    near = assess(_figure(caption_bbox=(72.0, 320.0, 372.0, 340.0)))
    far = assess(_figure(caption_bbox=(72.0, 345.0, 372.0, 365.0)))
    assert "caption_far" not in near.doubts
    assert far.doubts == ["caption_far"]
    assert far.confidence == pytest.approx(1 - PENALTY["caption_far"])


def test_caption_gap_measures_white_between_boxes():
    assert caption_gap((0, 0, 100, 100), (0, 110, 100, 120)) == 10
    assert caption_gap((0, 0, 100, 100), (130, 20, 200, 40)) == 30
    assert caption_gap((0, 0, 100, 100), (0, 90, 100, 120)) == 0


def test_caption_on_other_page_is_not_also_far():
    fig = assess(_figure(caption_bbox=(72.0, 60.0, 372.0, 80.0), page=1, caption_page=2))
    assert fig.doubts == ["caption_on_other_page"]


def test_caption_beside():
    fig = assess(_figure(flags=["caption_beside"], caption_bbox=(380.0, 120.0, 500.0, 160.0)))
    assert fig.doubts == ["caption_beside"]


def test_no_caption():
    assert "no_caption" in assess(_figure(caption="Fig. 1.1")).doubts
    assert "no_caption" not in assess(_figure(caption="Fig. 1.1 Lichen planus.")).doubts


def test_tiles_merged_and_drawing():
    assert assess(_figure(), tiles=3).doubts == ["tiles_merged"]
    assert assess(_figure(), drawing=True).doubts == ["drawing"]


def test_ocr_and_garbled_ocr_caption():
    clean = assess(_figure(), ocr=True)
    assert clean.doubts == ["ocr"]
    noisy = assess(_figure(caption="Fig. 1.1 Ps0r|as#s on t^e e|bow ~~ of a m@n."), ocr=True)
    assert noisy.doubts == ["ocr", "ocr_garbled"]
    assert noisy.confidence < clean.confidence
    # The same symbols on a born-digital page are the book's own text, not OCR noise.
    assert "ocr_garbled" not in assess(_figure(caption="Fig. 1.1 Ps0r|as#s t^e")).doubts


def test_garbled():
    assert not garbled("Psoriasis (a) on the elbow; (b) nail pitting, 40% of cases.")
    assert garbled("Ps0r|as#s on t^e e|bow")


def test_low_resolution():
    assert assess(_figure(flags=["low_resolution"])).doubts == ["low_resolution"]


def _two_panel(caption, n):
    w = 300.0 / n
    panels = [
        _panel(i, "abcdefgh"[i], (72 + i * w, 100.0, 72 + (i + 1) * w - 4, 300.0)) for i in range(n)
    ]
    return _figure(caption=caption, panels=panels, flags=["letters_mismatch"])


def test_letters_mismatch_by_one_keeps_the_panels_and_flags_them():
    fig = assess(_two_panel("Fig. 1.1 (a) Plaque. (b) Nail. (c) Scalp.", 2))
    assert fig.doubts == ["letters_mismatch"]
    assert len(fig.panels) == 2
    assert all(p.doubts == ["letters_mismatch"] for p in fig.panels)


def test_letters_mismatch_badly_keeps_the_whole_figure():
    fig = _two_panel("Fig. 1.1 (a) Plaque on the knee. (b) Nail pitting.", 4)
    fig.panels[2].modality_confidence = 0.9
    fig.panels[2].modality = "dermoscopic"
    fig.panels[1].flags = ["face"]
    assess(fig)
    assert fig.doubts == ["letters_mismatch", "panels_collapsed"]
    assert "panels_collapsed" in fig.flags
    [whole] = fig.panels
    assert whole.bbox == fig.bbox and whole.image_png == b"whole" and whole.letter is None
    assert whole.subcaption == "(a) Plaque on the knee. (b) Nail pitting."
    assert whole.modality == fig.modality == "dermoscopic"  # the surest panel's
    assert whole.flags == ["face"]
    assert whole.confidence == fig.confidence == score(fig.doubts)


def test_matching_letters_are_no_doubt():
    fig = assess(_two_panel("Fig. 1.1 (a) Plaque on the knee. (b) Nail pitting.", 2))
    assert fig.doubts == [] and len(fig.panels) == 2


def test_panel_doubts_add_to_the_figure_doubts():
    fig = _two_panel("Fig. 1.1 Psoriasis.", 2)
    fig.flags = ["panel_letters_inferred", "split_from_composite"]
    assess(fig, ocr=True)
    assert fig.doubts == ["ocr"]
    for p in fig.panels:
        assert p.doubts == ["ocr", "letter_inferred", "split_from_composite"]
        assert p.confidence < fig.confidence


def test_score_multiplies_and_stays_in_range():
    assert score([]) == 1.0
    every = list(PENALTY)
    assert 0.0 < score(every) < min(1 - v for v in PENALTY.values())


# --- through the pipeline and the CLI -------------------------------------------------------


def _photo(colour, size=(200, 240)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _four_panels_two_letters(path):
    """Four pictures in a row whose caption names only (a) and (b)."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    colours = [(200, 120, 110), (180, 100, 90), (210, 140, 120), (160, 90, 80)]
    for i, c in enumerate(colours):
        x = 72 + i * 120
        page.insert_image(pymupdf.Rect(x, 100, x + 114, 236), stream=_photo(c))
    page.insert_text((72, 252), "Fig. 1.1", fontname="hebo", fontsize=8.5)
    page.insert_text(
        (110, 252), "(a) Plaque on the knee. (b) Nail pitting.", fontname="helv", fontsize=8.5
    )
    body = "Psoriasis is a chronic inflammatory disease of the skin and nails. " * 3
    page.insert_textbox(pymupdf.Rect(72, 300, 540, 400), body, fontname="tiro", fontsize=10)
    doc.save(path)
    return path


def test_pipeline_keeps_the_whole_figure_when_letters_mismatch_badly(tmp_path):
    [fig] = extract_book(_four_panels_two_letters(tmp_path / "four.pdf"))
    assert "panels_collapsed" in fig.doubts
    assert len(fig.panels) == 1 and fig.panels[0].bbox == fig.bbox
    assert fig.confidence < 1.0


def test_cli_writes_confidence_and_doubts_and_validates(tmp_path):
    pdf = _four_panels_two_letters(tmp_path / "four.pdf")
    out = tmp_path / "out"
    assert cli_main([str(pdf), "--out", str(out), "--dpi", "72"]) == 0
    doc = json.loads((out / "figures.json").read_text())
    assert check_figures_json(doc) == []
    fig = doc["figures"][0]
    assert 0 < fig["confidence"] < 1 and "letters_mismatch" in fig["doubts"]
    panel = fig["panels"][0]
    assert panel["confidence"] <= fig["confidence"] and panel["doubts"]


def test_figures_json_check_accepts_optional_fields_and_refuses_bad_ones(tmp_path):
    pdf = _four_panels_two_letters(tmp_path / "four.pdf")
    out = tmp_path / "out"
    cli_main([str(pdf), "--out", str(out), "--dpi", "72"])
    doc = json.loads((out / "figures.json").read_text())
    fig = doc["figures"][0]
    for record in (fig, fig["panels"][0]):
        record.pop("confidence")
        record.pop("doubts")
    assert check_figures_json(doc) == []  # older files without them stay valid
    fig["confidence"] = 1.5
    fig["panels"][0]["doubts"] = "ocr"
    fig["panels"][0]["confidence"] = True
    problems = check_figures_json(doc)
    assert len(problems) == 3, problems
    del fig["caption"]
    assert any("missing 'caption'" in p for p in check_figures_json(doc))
    assert check_figures_json({"pages": []}) == ["the document has no 'figures' list"]
