"""The second PDF producer: books set as HTML and printed by headless Chromium.

The gold boxes must be exact in PyMuPDF's page coordinates (they are measured in the browser),
and the extractor, whose rules were written against PyMuPDF's own books, must still find the
figures, captions, panels and citations of books laid out differently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pymupdf
import pytest

from curation.extract import extract_book
from curation.extract.annotate import norm_label
from curation.samplebook import chromium, generate_book

if not Path(chromium.CHROMIUM).exists():
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        raise RuntimeError(f"no Chromium at {chromium.CHROMIUM}; .ci/run installs it")
    pytest.skip(f"no Chromium at {chromium.CHROMIUM}", allow_module_level=True)


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _grow(box, d: float) -> pymupdf.Rect:
    return pymupdf.Rect(box[0] - d, box[1] - d, box[2] + d, box[3] + d)


def _ws(text: str) -> str:
    return " ".join(text.split())


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


# varied: one column, captions below/above/beside/next page, composites, 2x2 grids, tables,
# banners, running feet. hard: 1x3 rows, letters under panels, capitals, pictures in strips,
# figures in pairs, indented paragraphs without spacing, soft hyphens. twocol: two columns, no
# outline (sections from heading fonts), soft hyphens.
@pytest.fixture(scope="module", params=["varied", "hard", "twocol"])
def chromium_book(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"chromium-{request.param}") / "book.pdf"
    gold = generate_book(
        path,
        chapters=2,
        pages_per_chapter=5,
        seed=5,
        style=request.param,
        unique_images=3,
        producer="chromium",
    )
    return path, gold, extract_book(path)


def test_printed_by_chromium_in_its_own_layout(chromium_book):
    path, gold, _ = chromium_book
    assert gold.producer == "chromium"
    with pymupdf.open(path) as doc:
        assert doc.metadata["producer"].startswith("Skia/PDF")
        assert "Chrome" in doc.metadata["creator"]
        assert doc.page_count == gold.page_count
        look = chromium.LOOKS[gold.style]
        assert (doc[0].rect.width, doc[0].rect.height) == (look.page_w, look.page_h)
        # Real embedded TrueType fonts, not PyMuPDF's Base-14 ones.
        fonts = {f[3].split("+")[-1] for page in doc for f in page.get_fonts()}
        assert fonts and all(f.startswith("DejaVu") for f in fonts)
        assert bool(doc.get_toc()) == (gold.style != "twocol")


def test_gold_boxes_are_where_chromium_put_the_images(chromium_book):
    """Every image the PDF places is a gold panel (or strips of one) or a decoy, to 0.05 pt."""
    path, gold, _ = chromium_book
    with pymupdf.open(path) as doc:
        targets: dict[int, list] = {}
        for g in gold.figures:
            if g.style == "vector":
                # Inline SVG: the drawing's paths fill the measured box (strokes inset).
                paths = [
                    p["rect"]
                    for p in doc[g.page - 1].get_drawings()
                    if _grow(g.bbox, 0.5).contains(p["rect"])
                ]
                assert paths, g.label
                drawn = paths[0]
                for r in paths[1:]:
                    drawn |= r
                assert all(abs(a - b) <= 1.0 for a, b in zip(drawn, g.bbox, strict=True))
                continue
            boxes = [g.bbox] if g.style.startswith("composite") else [p.bbox for p in g.panels]
            targets.setdefault(g.page, []).extend(boxes)
        for d in gold.decoys:
            # HTML tables, header bars and framed paragraphs are vector paths and text.
            if d.kind not in ("table", "header_bar", "text_box"):
                targets.setdefault(d.page, []).append(d.bbox)
        for number, boxes in targets.items():
            placed = [pymupdf.Rect(i["bbox"]) for i in doc[number - 1].get_image_info()]
            for box in boxes:
                inside = [r for r in placed if _grow(box, 0.1).contains(r)]
                assert inside, (number, box)
                union = inside[0]
                for r in inside[1:]:
                    union |= r
                assert all(abs(a - b) <= 0.05 for a, b in zip(union, box, strict=True)), box
        for g in gold.figures:
            if g.caption_position == "next_page":
                continue
            page = doc[g.caption_page - 1]
            text = page.get_textbox(_grow(g.caption_bbox, 1.0))
            assert _ws(text.replace("\u00ad", "")).startswith(g.caption.split()[0])


def test_extractor_reads_chromium_books(chromium_book):
    _, gold, figures = chromium_book
    fig = {"tp": 0, "fp": 0, "fn": 0}
    pair = dict(fig)
    panel = dict(fig)
    mention = dict(fig)
    modality = ages = 0
    used: set[int] = set()
    for g in gold.figures:
        hit = next(
            (
                i
                for i, f in enumerate(figures)
                if i not in used
                and f.page == g.page
                and norm_label(f.label) == norm_label(g.label)
                and _iou(f.bbox, g.bbox) >= 0.8
            ),
            None,
        )
        gm = {(m.page, m.text) for m in g.mentions}
        if hit is None:
            fig["fn"] += 1
            pair["fn"] += 1
            panel["fn"] += len(g.panels)
            mention["fn"] += len(gm)
            continue
        used.add(hit)
        f = figures[hit]
        fig["tp"] += 1
        ok = _ws(f.caption) == _ws(g.caption)
        pair["tp" if ok else "fn"] += 1
        pair["fp"] += not ok
        fm = {(m.page, _ws(m.text)) for m in f.mentions}
        mention["tp"] += len(gm & fm)
        mention["fp"] += len(fm - gm)
        mention["fn"] += len(gm - fm)
        matched = 0
        for p, gp in zip(f.panels, g.panels, strict=False):
            good = p.letter == gp.letter and _iou(p.bbox, gp.bbox) >= 0.7
            good = good and _ws(p.subcaption) == _ws(gp.subcaption)
            matched += good
            modality += p.modality == gp.modality
        panel["tp"] += matched
        panel["fp"] += len(f.panels) - matched
        panel["fn"] += len(g.panels) - matched
        ages += (f.age, f.sex) == (g.age, g.sex)
    extra = len(figures) - len(used)
    fig["fp"] += extra
    pair["fp"] += extra
    n_panels = sum(len(g.panels) for g in gold.figures)
    assert len(gold.figures) >= 8
    assert _f1(**fig) >= 0.95
    assert _f1(**pair) >= 0.9
    assert _f1(**panel) >= 0.9
    assert _f1(**mention) >= 0.95
    assert modality / n_panels >= 0.9
    assert ages / len(gold.figures) >= 0.95
    for d in gold.decoys:
        assert not any(f.page == d.page and _iou(f.bbox, d.bbox) > 0.3 for f in figures)
