"""Short captions set flush left under a narrower centred picture (#18, point 5).

Textbooks often centre a picture in the text column and set its caption flush with the column's
left edge. A short caption then shares no horizontal span with its picture: the pairer missed
it, and on a multi-page book the page-break joiner paired each page's picture with the next
page's caption. Generated pages in that layout (one page and several) and a real page cut from
the corpus's committed clinsci article (CC-BY 3.0) hold the behaviour.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

from curation.extract import extract_book

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "corpus"
BODY = "The lesions are scaly plaques on the extensor surfaces, often symmetric. " * 9


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((120, 160, 3)) * 80 + 120).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _textbook(path: Path, pages: int, caption_gap: float = 20.0) -> Path:
    """A single-column page per figure: body text, a centred 200 pt picture, a short caption
    flush with the left margin `caption_gap` points under it, and more body text."""
    doc = pymupdf.open()
    for n in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(72, 60, 523, 200), BODY, fontsize=10)
        page.insert_image(pymupdf.Rect(197, 220, 397, 370), stream=_png(n), keep_proportion=False)
        page.insert_text((72, 370 + caption_gap), f"Fig. {n}. Lesion on the arm.", fontsize=9)
        page.insert_textbox(pymupdf.Rect(72, 420, 523, 700), BODY, fontsize=10)
    doc.save(path)
    return path


def test_short_flush_left_caption_pairs_with_the_centred_picture_above(tmp_path):
    figures = extract_book(_textbook(tmp_path / "one.pdf", 1))
    assert [(f.page, f.label, f.caption) for f in figures] == [
        (1, "1", "Fig. 1. Lesion on the arm.")
    ]
    assert [round(v) for v in figures[0].bbox] == [197, 220, 397, 370]


def test_on_many_pages_each_picture_keeps_its_own_pages_caption(tmp_path):
    figures = extract_book(_textbook(tmp_path / "many.pdf", 4))
    assert [(f.page, f.label) for f in figures] == [(1, "1"), (2, "2"), (3, "3"), (4, "4")]
    assert all(f.caption_page in (None, f.page) for f in figures)


def test_pictures_are_not_paired_with_the_next_pages_caption(tmp_path):
    """A caption too far under its picture for the page pairer (45 pt, set off to the left)
    stays unpaired rather than be joined across the page break to the previous page's picture:
    nothing marks either as split by the break."""
    figures = extract_book(_textbook(tmp_path / "far.pdf", 3, caption_gap=45.0))
    assert all(f.label == str(f.page) for f in figures), [(f.page, f.label) for f in figures]


def test_a_caption_in_the_other_column_does_not_take_the_picture(tmp_path):
    """Two columns: the left column's caption sits just under the right column's picture and
    just over its own picture. No text line spans both columns, so it is no offset caption of
    the right-hand picture."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(54, 60, 302, 300), BODY, fontsize=9)
    page.insert_textbox(pymupdf.Rect(316, 60, 564, 200), BODY[:300], fontsize=9)
    page.insert_text((316, 215), "Fig. 1. Plaque on the shin.", fontsize=8)
    page.insert_image(pymupdf.Rect(316, 222, 564, 372), stream=_png(1), keep_proportion=False)
    page.insert_text((54, 380), "Fig. 2. Nodule on the back.", fontsize=8)
    page.insert_image(pymupdf.Rect(54, 388, 302, 538), stream=_png(2), keep_proportion=False)
    page.insert_textbox(pymupdf.Rect(316, 400, 564, 700), BODY[:400], fontsize=9)
    doc.save(tmp_path / "twocol.pdf")
    figures = {f.label: [round(v) for v in f.bbox] for f in extract_book(tmp_path / "twocol.pdf")}
    assert figures == {"1": [316, 222, 564, 372], "2": [54, 388, 302, 538]}


def _real_pages(tmp_path: Path, pages: list[int]) -> Path:
    """Pages of the committed clinsci article, cut with the producer's objects kept."""
    src = pymupdf.open(REAL / "clinsci.pdf")
    out = pymupdf.open()
    for n in pages:
        out.insert_pdf(src, from_page=n - 1, to_page=n - 1)
    path = tmp_path / f"clinsci-{'-'.join(map(str, pages))}.pdf"
    out.save(path)
    return path


def test_real_page_caption_flush_left_under_a_narrower_centred_picture(tmp_path):
    """clinsci p2: "Figure 1 Structure of compound 33RE" starts at the right column's left edge
    under a picture centred in that column."""
    figures = extract_book(_real_pages(tmp_path, [2]))
    assert [(f.label, f.caption[:35]) for f in figures] == [
        ("1", "Figure 1 Structure of compound 33RE")
    ]
    assert [round(v) for v in figures[0].bbox] == [350, 210, 491, 266]


def test_real_pages_each_keep_their_own_captions(tmp_path):
    """clinsci p2 and p6 cut together: every picture pairs with a caption of its own page."""
    figures = extract_book(_real_pages(tmp_path, [2, 6]))
    assert [(f.page, f.label) for f in figures] == [(1, "1"), (2, "5"), (2, "6")]
    assert all(f.caption_page in (None, f.page) for f in figures)
