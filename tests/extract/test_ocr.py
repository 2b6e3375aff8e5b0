"""Scanned pages: OCR only where there is no usable text layer, figures found on the page
image, and the same pairs as the born-digital book the scan was made from."""

from __future__ import annotations

import difflib
import io
import os
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from curation.extract import PdfError, extract_book, ocr
from curation.extract.ocr import _Line, build_blocks, join_pieces, scanned_copy
from curation.extract.pipeline import read_page
from curation.samplebook import generate_book


def _iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def pair_f1(born, scanned, similarity=0.9, box_iou=0.8):
    """Pairs of the scan matching born-digital pairs: same page, box IoU and caption
    similarity (difflib ratio) at least the thresholds."""
    used = set()
    tp = 0
    for f in born:
        for j, g in enumerate(scanned):
            if j in used or g.page != f.page or _iou(f.bbox, g.bbox) < box_iou:
                continue
            if difflib.SequenceMatcher(None, f.caption, g.caption).ratio() >= similarity:
                used.add(j)
                tp += 1
                break
    p = tp / len(scanned) if scanned else 1.0
    r = tp / len(born) if born else 1.0
    return 2 * p * r / (p + r) if p + r else 0.0


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A born-digital sample book (several figure kinds) and its scanned copy."""
    folder = tmp_path_factory.mktemp("ocr")
    path = folder / "book.pdf"
    generate_book(path, chapters=1, pages_per_chapter=4, seed=3)
    return path, scanned_copy(path, folder / "scan.pdf", dpi=200)


@pytest.fixture(scope="module")
def extracted(book):
    born, scan = book
    return extract_book(born), extract_book(scan)


def test_scanned_copy_gives_the_born_digital_pairs(extracted):
    born, scanned = extracted
    assert len(born) >= 5
    assert pair_f1(born, scanned) >= 0.9


def test_scanned_panels_match(extracted):
    born, scanned = extracted
    by_label = {f.label: f for f in scanned}
    same = [
        f for f in born if f.label in by_label and len(by_label[f.label].panels) == len(f.panels)
    ]
    assert len(same) >= 0.8 * len(born)
    for f in same:
        g = by_label[f.label]
        assert [p.letter for p in g.panels] == [p.letter for p in f.panels]
        assert all(_iou(a.bbox, b.bbox) >= 0.8 for a, b in zip(f.panels, g.panels, strict=True))


def test_scanned_mentions_come_through_the_link_pass(extracted):
    born, scanned = extracted
    cited = {f.label: len(f.mentions) for f in born if f.mentions}
    assert cited
    found = {g.label: len(g.mentions) for g in scanned}
    hits = sum(1 for label, n in cited.items() if found.get(label) == n)
    assert hits >= 0.8 * len(cited)


def test_scanned_figures_are_doubted_as_ocr(extracted):
    born, scanned = extracted
    assert all("ocr" in g.doubts and g.confidence < 1 for g in scanned)
    assert all("ocr" in p.doubts for g in scanned for p in g.panels)
    assert not any("ocr" in f.doubts for f in born)


def test_crops_come_from_the_page_image(extracted):
    born, scanned = extracted
    f = born[0]
    g = next(g for g in scanned if g.label == f.label)
    a = Image.open(io.BytesIO(f.image_png)).convert("L")
    b = Image.open(io.BytesIO(g.image_png)).convert("L").resize(a.size)
    assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() < 20


def test_mixed_book_reads_only_its_scanned_pages_by_ocr(book, extracted, tmp_path, monkeypatch):
    born_path, _ = book
    born, _ = extracted
    scan_page = born[-1].page  # a page with a figure
    mixed = scanned_copy(born_path, tmp_path / "mixed.pdf", pages={scan_page})
    calls = []
    real = ocr.recognise

    def counting(pix):
        calls.append(pix.width)
        return real(pix)

    monkeypatch.setattr(ocr, "recognise", counting)
    assert len(extract_book(born_path)) == len(born)
    assert calls == []  # a born-digital book never runs Tesseract
    mixed_figs = extract_book(mixed)
    assert len(calls) == 1  # once for the scanned page, not again in the link pass
    on_scan = [f for f in mixed_figs if f.page == scan_page]
    assert on_scan and all("ocr" in f.doubts for f in on_scan)
    assert pair_f1(born, mixed_figs) >= 0.9
    rest = [f for f in mixed_figs if f.page != scan_page]
    assert [f.caption for f in rest] == [f.caption for f in born if f.page != scan_page]
    assert not any("ocr" in f.doubts for f in rest)


def test_a_scan_stored_as_strips_is_read_as_one_page_image(book, extracted, tmp_path):
    """PDFium stores a scanned page as dozens of abutting bands (MinerU's demo/pdfs/
    small_ocr.pdf has 62 a page); they are one scan, not 62 thin pictures."""
    born_path, _ = book
    born, scanned = extracted
    page = born[-1].page
    striped = scanned_copy(born_path, tmp_path / "strips.pdf", pages={page}, strips=40)
    doc = pymupdf.open(striped)
    assert len(doc[page - 1].get_images()) == 40
    assert ocr.scan_image(doc[page - 1])
    got = [f for f in extract_book(striped) if f.page == page]
    want = [f for f in scanned if f.page == page]
    assert [f.label for f in got] == [f.label for f in want]
    assert all(_iou(a.bbox, b.bbox) > 0.95 for a, b in zip(got, want, strict=True))


def _photo(size=(300, 220)) -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(90, 200, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_scan_with_its_own_text_layer_is_not_ocrd(tmp_path, monkeypatch):
    """A scan its producer already OCR'd (invisible text over the page image) keeps that text;
    only its figures come from the image."""
    src = pymupdf.open()
    page = src.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(100, 100, 400, 320), stream=_photo())
    page.insert_text((100, 340), "Fig. 2.1 Lichen planus on the wrist.", fontsize=9)
    pix = page.get_pixmap(dpi=150)
    scan = pymupdf.open()
    sp = scan.new_page(width=612, height=792)
    sp.insert_image(sp.rect, pixmap=pix)
    sp.insert_text((100, 340), "Fig. 2.1 Lichen planus on the wrist.", fontsize=9, render_mode=3)
    sp.insert_text(
        (100, 400), "Lichen planus is shown in Figure 2.1 here.", fontsize=10, render_mode=3
    )
    path = tmp_path / "layer.pdf"
    scan.save(path)

    def refuse(*args, **kwargs):
        raise AssertionError("OCR ran on a page with a text layer")

    monkeypatch.setattr(ocr, "recognise", refuse)
    [fig] = extract_book(path)
    assert fig.caption == "Fig. 2.1 Lichen planus on the wrist."
    assert _iou(fig.bbox, (100, 100, 400, 320)) > 0.9
    assert "ocr" not in fig.doubts
    assert [m.page for m in fig.mentions] == [1]


def test_born_digital_page_with_a_background_picture_is_not_a_scan(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(page.rect, stream=_photo((60, 80)))
    page.insert_image(pymupdf.Rect(100, 100, 400, 320), stream=_photo())
    assert not ocr.scan_image(page)
    bare = pymupdf.open().new_page(width=612, height=792)
    bare.insert_image(bare.rect, stream=_photo((60, 80)))
    assert ocr.scan_image(bare)


def test_region_finder_tells_pictures_from_line_art_and_drops_framed_prose(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(72, 72, 300, 250), stream=_photo())
    shape = page.new_shape()  # a line chart: axes and a zigzag
    shape.draw_polyline([(340, 80), (340, 240), (540, 240)])
    shape.draw_polyline([(350, 220), (400, 150), (450, 190), (520, 100)])
    shape.finish(color=(0, 0, 0), width=1.2)
    shape.draw_rect(pymupdf.Rect(72, 420, 540, 520))  # a frame around a key-points box
    shape.finish(color=(0, 0, 0), width=1)
    shape.commit()
    text = "Key points: " + "plaques are well demarcated and silvery in most patients. " * 4
    page.insert_textbox(pymupdf.Rect(80, 430, 530, 510), text, fontsize=10)
    scan = scanned_copy_doc(doc, tmp_path / "regions.pdf")
    pd = read_page(scan, 1, {})
    assert ocr.is_scanned(pd) and ocr.is_ocr(pd)
    assert [_iou(p.bbox, (72, 72, 300, 250)) > 0.9 for p in pd.images] == [True]
    assert len(pd.drawings) >= 1
    assert any(_iou(d.bbox, (340, 80, 540, 240)) > 0.8 for d in pd.drawings)
    prose = [b for b in pd.blocks if "demarcated" in b.text]
    assert prose and prose[0].spans[0].font == ocr.OCR_FONT


def scanned_copy_doc(doc, path):
    doc.save(path.with_suffix(".src.pdf"))
    scanned_copy(path.with_suffix(".src.pdf"), path)
    return pymupdf.open(path)


def test_pieces_of_one_line_are_joined_and_captions_start_blocks():
    lines = [
        _Line((62, 584, 168, 592), "Fig. 1.9 Psoriasis vulgaris in", 7.5),
        _Line((174, 584, 524, 592), "a 49-year-old woman. (a) Plaque on the", 8.0),
        _Line((62, 594, 437, 604), "knee. (b) Nail pitting.", 9.0),
        _Line((62, 620, 526, 630), "Careful inspection is the first step.", 8.5),
        _Line((62, 632, 526, 642), "Fig. 1.10 Lichen planus.", 8.5),
    ]
    assert len(join_pieces(lines)) == 4
    blocks = build_blocks(lines)
    assert [b.text for b in blocks] == [
        "Fig. 1.9 Psoriasis vulgaris in a 49-year-old woman. (a) Plaque on the knee. "
        "(b) Nail pitting.",
        "Careful inspection is the first step.",
        "Fig. 1.10 Lichen planus.",
    ]
    assert len({s.size for s in blocks[0].spans}) == 1  # one size a block: no OCR jitter


def test_columns_are_not_joined_into_one_line():
    left = _Line((62, 100, 290, 110), "left column text runs here", 9.0)
    right = _Line((308, 100, 540, 110), "right column text runs here", 9.0)
    assert len(join_pieces([left, right])) == 2


def test_missing_tesseract_data_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract executable either
    monkeypatch.setattr(ocr, "_COMMON", ())
    ocr.tessdata.cache_clear()
    try:
        with pytest.raises(PdfError) as err:
            ocr.tessdata()
    finally:
        ocr.tessdata.cache_clear()
    assert err.value.code == "ocr_unavailable"
    assert "apt-get install tesseract-ocr tesseract-ocr-eng" in err.value.message
    assert "TESSDATA_PREFIX" in err.value.message


def test_tessdata_prefers_the_environment(tmp_path, monkeypatch):
    (tmp_path / "eng.traineddata").write_bytes(b"x")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    ocr.tessdata.cache_clear()
    try:
        assert ocr.tessdata() == str(tmp_path)
    finally:
        ocr.tessdata.cache_clear()
    monkeypatch.delenv("TESSDATA_PREFIX")
    try:
        found = ocr.tessdata()  # from `tesseract --list-langs` on this machine
    finally:
        ocr.tessdata.cache_clear()
    assert Path(found, "eng.traineddata").is_file()


def _caption_pixmap() -> pymupdf.Pixmap:
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=60)
    page.insert_text((10, 30), "Fig. 4.2 Nummular eczema on the shin.", fontsize=11)
    pix = page.get_pixmap(dpi=ocr.OCR_DPI, alpha=False)
    pix.set_dpi(ocr.OCR_DPI, ocr.OCR_DPI)
    return pix


@pytest.mark.parametrize("engine", ["tesseract", "pymupdf"])
def test_both_tesseracts_read_a_caption(engine, monkeypatch):
    """The installed program (preferred, faster) and PyMuPDF's built-in copy give the same
    kind of text layer."""
    monkeypatch.setenv("MMSKIN_OCR_ENGINE", engine)
    assert ocr.engine() == engine
    out = pymupdf.open("pdf", ocr.recognise(_caption_pixmap()))
    assert "Fig. 4.2 Nummular eczema on the shin." in " ".join(out[0].get_text().split())
    assert out[0].rect.width == pytest.approx(300, abs=1)  # points of the page, at OCR_DPI


def test_engine_falls_back_to_pymupdf_without_the_program(tmp_path, monkeypatch):
    monkeypatch.delenv("MMSKIN_OCR_ENGINE", raising=False)
    assert ocr.engine() == "tesseract"  # installed here
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ocr.engine() == "pymupdf"


def test_a_failing_program_leaves_the_page_to_pymupdf(tmp_path, monkeypatch):
    broken = tmp_path / "tesseract"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("MMSKIN_OCR_ENGINE", raising=False)
    assert ocr.engine() == "tesseract"
    out = pymupdf.open("pdf", ocr.recognise(_caption_pixmap()))
    assert "Nummular eczema" in out[0].get_text()
