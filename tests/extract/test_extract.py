from __future__ import annotations

import io

import pymupdf
from PIL import Image

from curation.extract import FigureRef, extract_book, extract_chunk, inspect_pdf, link_book


def _close(a, b, tol=1.5):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def _by_label(figures):
    return {f.label: f for f in figures}


def test_inspect_reads_metadata(sample_book):
    path, gold = sample_book
    info = inspect_pdf(path)
    assert info.page_count == gold.page_count
    assert info.title == gold.title
    assert info.author


def test_every_gold_figure_is_found(sample_book, sample_figures):
    _, gold = sample_book
    found = _by_label(sample_figures)
    assert len(sample_figures) == len(gold.figures)
    for g in gold.figures:
        f = found[g.label]
        assert f.page == g.page
        assert f.caption == g.caption
        assert _close(f.bbox, g.bbox)
        assert f.caption_bbox is not None and _close(f.caption_bbox[:2], g.caption_bbox[:2], 3)
        assert [p.letter for p in f.panels] == [p.letter for p in g.panels]
        assert [p.subcaption for p in f.panels] == [p.subcaption for p in g.panels]
        for p, gp in zip(f.panels, g.panels, strict=True):
            assert _close(p.bbox, gp.bbox)
        assert sorted((m.page, m.text) for m in f.mentions) == sorted(
            (m.page, m.text) for m in g.mentions
        )
        assert f.section == g.section


def test_annotations_match_gold(sample_book, sample_figures):
    _, gold = sample_book
    found = _by_label(sample_figures)
    panels = [
        (p, gp) for g in gold.figures for p, gp in zip(found[g.label].panels, g.panels, strict=True)
    ]
    modality_ok = sum(p.modality == gp.modality for p, gp in panels)
    assert modality_ok / len(panels) >= 0.95
    for g in gold.figures:
        f = found[g.label]
        assert (f.age, f.sex) == (g.age, g.sex), g.caption
        assert f.diagnosis == g.diagnosis


def test_crops_are_pngs_of_the_box(sample_book, sample_figures):
    f = sample_figures[0]
    img = Image.open(io.BytesIO(f.panels[0].image_png))
    assert img.format == "PNG"
    x0, y0, x1, y1 = f.panels[0].bbox
    assert abs(img.width - (x1 - x0) * 150 / 72) <= 2
    assert abs(img.height - (y1 - y0) * 150 / 72) <= 2


def test_chunks_are_deterministic_and_compose(small_book):
    path, gold = small_book
    a = extract_chunk(path, 3, 5)
    b = extract_chunk(path, 3, 5)
    assert a == b  # dataclass equality covers the PNG bytes
    assert [p.number for p in a.pages] == [3, 4, 5]
    assert all(p.section for p in a.pages)
    figures, orphans = [], []
    for first in range(1, gold.page_count + 1, 2):
        chunk = extract_chunk(path, first, min(first + 1, gold.page_count))
        figures += chunk.figures
        orphans += chunk.orphans
    link = link_book(path, [FigureRef(f.label, f.page) for f in figures], orphans)
    whole = extract_book(path)
    assert sorted(f.label for f in figures + link.figures) == sorted(f.label for f in whole)
    for f in whole:
        assert link.mentions[f.label] == f.mentions


def test_rotated_page_crops_the_right_region(tmp_path):
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 50, 50)).save(buf, "PNG")
    page.insert_image(pymupdf.Rect(100, 100, 400, 300), stream=buf.getvalue())
    page.insert_text((100, 318), "Fig. 1.1 Psoriasis in a 40-year-old man.", fontsize=9)
    page.set_rotation(90)
    path = tmp_path / "rotated.pdf"
    doc.save(path)
    (fig,) = extract_chunk(path, 1, 1).figures
    assert fig.label == "1.1" and fig.age == 40
    assert fig.bbox == (100.0, 100.0, 400.0, 300.0)
    img = Image.open(io.BytesIO(fig.image_png)).convert("RGB")
    assert img.size[0] < img.size[1]  # shown as the reader sees the rotated page
    assert img.getpixel((img.width // 2, img.height // 2)) == (200, 50, 50)


def test_book_streams_in_chunks(small_book):
    """Chunked reading (bounded memory) gives the one-chunk result; `on_figures` sees every
    figure, with its crops, before the book is done."""
    path, gold = small_book
    seen = []
    chunked = extract_book(path, chunk_pages=2, on_figures=seen.extend)
    whole = extract_book(path, chunk_pages=gold.page_count)
    assert chunked == whole
    assert sorted(f.label for f in seen) == sorted(f.label for f in whole)
    assert all(f.image_png and all(p.image_png for p in f.panels) for f in seen)
