"""Captioned vector drawings are figures; rules, header bars, boxes around text and vector
tables are not."""

from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from curation.extract import extract_book
from curation.extract.pipeline import read_page
from curation.samplebook import generate_book


def _iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def vector_book(tmp_path_factory):
    """A two-column book with vector diagrams, boxed paragraphs, header bars and tables."""
    path = tmp_path_factory.mktemp("vector") / "vector.pdf"
    gold = generate_book(path, chapters=2, pages_per_chapter=6, seed=0, style="twocol")
    return path, gold, extract_book(path)


def test_corpus_has_vector_figures_and_vector_decoys(vector_book):
    _, gold, _ = vector_book
    vectors = [f for f in gold.figures if f.style == "vector"]
    assert len(vectors) >= 3
    for f in vectors:
        assert f.modality == "other" and f.age is None and f.sex is None
        assert len(f.panels) == 1 and f.panels[0].letter is None
        assert f.panels[0].bbox == f.bbox and f.panels[0].modality == "other"
    kinds = {d.kind for d in gold.decoys}
    assert {"table", "text_box", "header_bar"} <= kinds


def test_vector_figures_found_with_captions(vector_book):
    _, gold, figures = vector_book
    got = {(f.page, f.label): f for f in figures}
    for g in (f for f in gold.figures if f.style == "vector"):
        f = got.get((g.page, g.label))
        assert f is not None, g.label
        assert _iou(f.bbox, g.bbox) >= 0.8, (g.label, f.bbox, g.bbox)
        assert _norm(f.caption) == _norm(g.caption)
        assert f.modality == "other"
        assert [p.letter for p in f.panels] == [None]
        assert "low_resolution" not in f.flags
        # The crop is rendered from the page: the drawing's box at the default 150 dpi.
        img = Image.open(io.BytesIO(f.image_png))
        assert abs(img.width - (f.bbox[2] - f.bbox[0]) * 150 / 72) <= 2
        assert len(img.getcolors(1 << 16) or range(1 << 16)) > 4  # not blank


def test_whole_book_exact_and_no_decoy_taken(vector_book):
    _, gold, figures = vector_book
    assert len(figures) == len(gold.figures)
    for d in gold.decoys:
        for f in figures:
            assert not (f.page == d.page and _iou(f.bbox, d.bbox) > 0.3), (d.kind, f.label)


def _page_with_drawings() -> bytes:
    """One page: a captioned diagram with a label sticking out of it, an uncaptioned drawing,
    a boxed paragraph just above the diagram and a fully ruled vector table under its "Table"
    caption."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    prose = (
        "Key point: the diagnosis rests on the clinical picture and the course. "
        "Biopsy helps when the picture is atypical and treatment has failed. "
        "Patch testing is indicated when contact allergy is suspected from the distribution, "
        "and a potassium hydroxide preparation excludes a fungal infection of the skin."
    )
    page.insert_textbox(pymupdf.Rect(70, 60, 520, 140), prose, fontname="tiro", fontsize=10)
    page.draw_rect(pymupdf.Rect(66, 56, 524, 146), color=(0, 0, 0.5), width=0.8)
    # Diagram at 100..300 x 150..290, label running past its right edge.
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(100, 150, 300, 290))
    shape.finish(color=(0.2, 0.2, 0.2), fill=(0.95, 0.9, 0.85), width=0.8)
    shape.draw_bezier((100, 200), (150, 230), (250, 170), (300, 200))
    shape.finish(color=(0.6, 0.1, 0.1), width=1.2, closePath=False)
    shape.commit()
    page.insert_text((270, 180), "Epidermis", fontname="helv", fontsize=7)
    page.insert_text((100, 305), "Fig. 1.1", fontname="hebo", fontsize=8.5)
    page.insert_text((140, 305), "Schematic of the skin layers", fontname="helv", fontsize=8.5)
    # An ornament without a caption.
    page.draw_circle((450, 220), 40, color=(0.5, 0.5, 0.5), fill=(0.9, 0.9, 1.0))
    # A ruled table: caption above, rows and columns joined into one grid.
    page.insert_text((100, 400), "Table 1.1 Mimics", fontname="hebo", fontsize=8.5)
    for r in range(6):
        page.draw_line((100, 410 + 14 * r), (400, 410 + 14 * r), width=0.5)
        for c in range(3):
            if r < 5:
                page.insert_text((104 + 100 * c, 420 + 14 * r), f"cell {r}{c}", fontsize=8)
    for c in range(4):
        page.draw_line((100 + 100 * c, 410), (100 + 100 * c, 480), width=0.5)
    page.draw_rect(pymupdf.Rect(62, 48, 533, 53), color=None, fill=(0.5, 0.2, 0.3))
    data = doc.tobytes()
    doc.close()
    return data


def test_only_the_captioned_drawing_is_a_figure(tmp_path):
    path = tmp_path / "drawings.pdf"
    path.write_bytes(_page_with_drawings())
    doc = pymupdf.open(path)
    # The reader sees the diagram, the ornament and the table as clusters; the frame around
    # the paragraph, 4 pt above the diagram, is left out rather than joined to it.
    clusters = sorted(d.bbox for d in read_page(doc, 1, {}).drawings)
    doc.close()
    assert len(clusters) == 3, clusters
    assert clusters[0] == pytest.approx((100, 150, 300, 290), abs=1)
    figures = extract_book(path)
    assert [f.label for f in figures] == ["1.1"]
    f = figures[0]
    assert f.caption == "Fig. 1.1 Schematic of the skin layers"
    assert f.modality == "other"
    # The figure box holds the drawing and its label, not the caption.
    assert f.bbox[0] == pytest.approx(100, abs=1) and f.bbox[1] == pytest.approx(150, abs=1)
    assert f.bbox[3] == pytest.approx(290, abs=1)
    assert f.bbox[2] > 300  # the label past the drawing's right edge
    assert f.caption_bbox[1] > 290


def _plot(page: pymupdf.Page, top: float, title: str) -> None:
    """A line plot drawn as paths at 100..300 x top..top+120, with a title over it, a row of
    tick values and an axis title under it: the way TeX/dvips and plotting tools set plots."""
    page.insert_text((160, top - 4), title, fontname="helv", fontsize=7)
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(100, top, 300, top + 120))
    shape.finish(color=(0, 0, 0), width=0.6)
    shape.draw_polyline([(100, top + 110), (150, top + 60), (200, top + 70), (300, top + 10)])
    shape.finish(color=(0.1, 0.1, 0.7), width=1.0, closePath=False)
    shape.commit()
    page.insert_text((98, top + 128), "0    50    100    150    200    250", fontsize=6)
    page.insert_text((170, top + 136), "Number of tasks", fontname="helv", fontsize=7)


def _stacked_plots_page(with_caption_between: bool = False) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 50, 523, 110), "Body text of the section. " * 14)
    _plot(page, 130, "Weakly parallel")
    if with_caption_between:
        page.insert_text((100, 276), "Figure 1: Makespan ratio.", fontsize=8)
    _plot(page, 290, "Highly parallel")
    page.insert_text((100, 444), "Figure 2: Performance ratio of both criteria.", fontsize=8)
    page.insert_textbox(pymupdf.Rect(72, 470, 523, 560), "Body text of the section. " * 14)
    data = doc.tobytes()
    doc.close()
    return data


def test_stacked_vector_plots_under_one_caption_are_one_figure(tmp_path):
    """Two plots one over the other, the caption under the lower: the upper one, with only its
    ticks and axis title between, is a second panel, not decoration (#11 class 5)."""
    path = tmp_path / "stacked.pdf"
    path.write_bytes(_stacked_plots_page())
    figures = extract_book(path)
    assert [f.label for f in figures] == ["2"]
    f = figures[0]
    assert f.bbox[1] == pytest.approx(130 - 10, abs=3)  # the upper plot's title is in
    assert f.bbox[3] == pytest.approx(290 + 138, abs=3)  # the lower plot's axis title too
    # No letter is printed: a and b are assigned in reading order, and said to be.
    assert [p.letter for p in f.panels] == ["a", "b"]
    assert "panel_letters_inferred" in f.flags
    upper, lower = f.panels
    assert upper.bbox[3] <= lower.bbox[1] + 1
    assert upper.bbox[1] == pytest.approx(120, abs=3) and lower.bbox[3] > 420


def test_a_plot_with_its_own_caption_is_not_taken_into_the_next(tmp_path):
    path = tmp_path / "two-figures.pdf"
    path.write_bytes(_stacked_plots_page(with_caption_between=True))
    figures = {f.label: f for f in extract_book(path)}
    assert sorted(figures) == ["1", "2"]
    assert figures["2"].bbox[1] > 275  # its own title, not the plot above
    assert len(figures["2"].panels) == 1


def test_a_long_row_of_tick_values_is_part_of_the_plot(tmp_path):
    """Ten tick values are more words than a label may have, but they are the axis's (#11
    class 6): the figure box takes them in."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(72, 50, 523, 110), "Body text of the section. " * 14)
    shape = page.new_shape()
    shape.draw_rect(pymupdf.Rect(100, 130, 400, 250))
    shape.finish(color=(0, 0, 0), width=0.6)
    shape.draw_polyline([(100, 240), (200, 180), (300, 200), (400, 140)])
    shape.finish(color=(0.1, 0.1, 0.7), width=1.0, closePath=False)
    shape.commit()
    page.insert_text(
        (98, 258), "0   50   100   150   200   250   300   350   400   450", fontsize=6
    )
    page.insert_text((100, 290), "Figure 1: Ratio against the number of tasks.", fontsize=8)
    path = tmp_path / "ticks.pdf"
    doc.save(path)
    figures = extract_book(path)
    assert [f.label for f in figures] == ["1"]
    assert figures[0].bbox[3] == pytest.approx(259, abs=2)
