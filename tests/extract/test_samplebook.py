from __future__ import annotations

import json

import pymupdf

from curation.samplebook import GoldBook, generate_book


def test_book_is_small_and_structured(sample_book):
    path, gold = sample_book
    # The default 24-page book must stay under 3 MB; this one shares its picture sizes.
    assert path.stat().st_size / gold.page_count < 3 * 1024 * 1024 / 24
    doc = pymupdf.open(path)
    assert doc.page_count == gold.page_count >= 12
    toc = doc.get_toc()
    assert toc[0][0] == 1 and toc[0][1].startswith("Chapter 1")
    assert any(lvl == 2 for lvl, _, _ in toc)
    assert doc.metadata["title"] == "Sample Atlas of Dermatology"
    styles = {f.style for f in gold.figures}
    assert {"single", "row2", "row3"} <= styles
    assert all(f.mentions for f in gold.figures)


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    ga = generate_book(a, chapters=1, pages_per_chapter=3, seed=7, unique_images=2)
    gb = generate_book(b, chapters=1, pages_per_chapter=3, seed=7, unique_images=2)
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(ga.to_json())["figures"] == json.loads(gb.to_json())["figures"]
    c = tmp_path / "c.pdf"
    generate_book(c, chapters=1, pages_per_chapter=3, seed=8, unique_images=2)
    assert c.read_bytes() != a.read_bytes()


def test_gold_json_round_trip(sample_book):
    _, gold = sample_book
    again = GoldBook.from_json(gold.to_json())
    assert again == gold
