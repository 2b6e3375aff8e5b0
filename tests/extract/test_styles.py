"""Every generated layout style is extracted exactly; tables and banners are not figures."""

from __future__ import annotations

import json

import pytest

from curation.extract import FigureRef, extract_book, extract_chunk, link_book
from curation.extract.annotate import norm_label
from curation.samplebook import generate_book


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module", params=["varied", "hard", "twocol"])
def styled_book(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "book.pdf"
    gold = generate_book(
        path, chapters=1, pages_per_chapter=7, seed=5, style=request.param, unique_images=3
    )
    return path, gold, extract_book(path)


def test_style_extracted_exactly(styled_book):
    _, gold, figures = styled_book
    found = {norm_label(f.label): f for f in figures}
    assert len(figures) == len(gold.figures)
    for g in gold.figures:
        f = found[norm_label(g.label)]
        assert (f.page, f.caption) == (g.page, g.caption)
        assert _iou(f.bbox, g.bbox) > 0.9
        assert [p.letter for p in f.panels] == [p.letter for p in g.panels]
        assert all(_iou(p.bbox, gp.bbox) > 0.8 for p, gp in zip(f.panels, g.panels, strict=True))
        assert [p.subcaption for p in f.panels] == [p.subcaption for p in g.panels]
        assert sorted((m.page, m.text) for m in f.mentions) == sorted(
            (m.page, m.text) for m in g.mentions
        )
        assert f.section == g.section
        assert [p.modality for p in f.panels] == [p.modality for p in g.panels]


def test_decoys_are_not_figures(styled_book):
    _, gold, figures = styled_book
    for d in gold.decoys:
        assert not any(f.page == d.page and _iou(f.bbox, d.bbox) > 0.3 for f in figures)


@pytest.mark.parametrize("styled_book", ["varied"], indirect=True)
def test_orphans_survive_json_and_link(styled_book):
    """Only the varied style puts captions on the next page."""
    path, gold, figures = styled_book
    assert any(f.caption_position == "next_page" for f in gold.figures)
    mid = gold.page_count // 2
    chunks = [extract_chunk(path, 1, mid), extract_chunk(path, mid + 1, gold.page_count)]
    found = [f for c in chunks for f in c.figures]
    orphans = json.loads(json.dumps([o for c in chunks for o in c.orphans]))
    link = link_book(path, [FigureRef(f.label, f.page) for f in found], orphans)
    labels = sorted(f.label for f in found + link.figures)
    assert labels == sorted(f.label for f in figures)
