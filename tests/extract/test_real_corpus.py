"""The real-PDF corpus: gold that holds together, a manifest that says what is committed and
how it was split, and a drawing tool that really draws (what annotators and rule writers use)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pymupdf
from PIL import Image

from tests.tools import draw_gold
from tests.tools.gold_from_annot import REAL, check_gold, compile_doc

sys.path.insert(0, str(REAL))
from fetch_corpus import cut, load_manifest, pdf_path, ranges

MANIFEST = load_manifest()
COMMITTED = [d for d in MANIFEST if d["committed"]]


def _sizes(pdf: Path) -> dict[int, tuple[float, float]]:
    with pymupdf.open(pdf) as doc:
        return {i + 1: (p.rect.width, p.rect.height) for i, p in enumerate(doc)}


def test_committed_pdfs_match_their_provenance():
    prov = json.loads((REAL / "corpus" / "provenance.json").read_text())["files"]
    assert {p["file"] for p in prov} == {f"{d['id']}.pdf" for d in COMMITTED}
    for p in prov:
        data = (REAL / "corpus" / p["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == p["sha256"], p["file"]
        assert p["repository"] and len(p["commit"]) == 40 and p["path"] and p["licence"]
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            assert doc.page_count == len(p["pages_kept"])
            assert doc.metadata["producer"] == p["producer"]  # the cut keeps who made it


def test_every_committed_gold_file_validates_against_its_pdf():
    checked = 0
    for d in COMMITTED:
        gold_file = REAL / "gold" / f"{d['id']}.json"
        gold = json.loads(gold_file.read_text())
        assert check_gold(gold, _sizes(pdf_path(d))) == [], d["id"]
        checked += len(gold["figures"])
    assert checked >= 20


def test_every_gold_file_is_in_the_manifest_and_well_formed():
    ids = {d["id"] for d in MANIFEST}
    for gold_file in sorted((REAL / "gold").glob("*.json")):
        assert gold_file.stem in ids
        gold = json.loads(gold_file.read_text())
        sizes = {n: (10_000.0, 10_000.0) for n in range(1, gold["page_count"] + 1)}
        assert check_gold(gold, sizes) == [], gold_file.stem


def test_gold_is_what_its_annotation_file_compiles_to():
    """Gold is compiled from annot/<id>.txt; an edited annotation must be compiled again."""
    for d in COMMITTED:
        stored = json.loads((REAL / "gold" / f"{d['id']}.json").read_text())
        assert compile_doc(d["id"]) == stored, d["id"]


def test_check_gold_finds_broken_boxes():
    gold = json.loads((REAL / "gold" / "plos-wheat.json").read_text())
    sizes = _sizes(pdf_path(next(d for d in MANIFEST if d["id"] == "plos-wheat")))
    f = gold["figures"][0]
    f["bbox"] = [f["bbox"][0], f["bbox"][1], 700.0, f["bbox"][3]]  # past the 612 pt page
    f["panels"][0]["bbox"] = [0.0, 0.0, 5.0, 5.0]  # outside its figure
    gold["figures"][1]["caption"] = "Temperature and stress"
    problems = check_gold(gold, sizes)
    assert any("leaves the 612x792 page" in p for p in problems)
    assert any("leaves its figure" in p for p in problems)
    assert any("does not start with its number" in p for p in problems)


def test_split_spans_producers_and_tuned_on_lists_the_holdout():
    holdout = [d for d in MANIFEST if d["split"] == "holdout"]
    assert 0.2 <= len(holdout) / len(MANIFEST) <= 0.4
    assert len({d["family"] for d in holdout}) >= 5
    text = (REAL / "TUNED_ON.md").read_text()
    section = text.split("## Holdout", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"^\| ([a-z0-9-]+) \|", section, re.M)) - {"document"} == {
        d["id"] for d in holdout
    }


def test_fresh_holdout_is_listed_in_tuned_on_and_no_rule_names_it():
    fresh = {d["id"] for d in MANIFEST if d["split"] == "fresh"}
    assert len(fresh) >= 5
    text = (REAL / "TUNED_ON.md").read_text()
    section = text.split("## Fresh holdout", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"^\| ([a-z0-9-]+) \|", section, re.M)) - {"document"} == fresh
    from tests.benchmarks.bench_real import tuned_on

    assert not fresh & {d for ids in tuned_on().values() for d in ids}


def test_cut_keeps_the_pages_asked_for_and_the_producer():
    src = pymupdf.open()
    for i in range(5):
        src.new_page().insert_text((72, 72), f"page {i + 1}")
    src.set_metadata({"producer": "Some Producer 1.0", "creator": "Writer"})
    data = cut(src.tobytes(), [2, 3, 5])
    assert ranges([2, 3, 5]) == [(1, 2), (4, 4)]
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        assert [p.get_text().strip() for p in doc] == ["page 2", "page 3", "page 5"]
        assert doc.metadata["producer"] == "Some Producer 1.0"


def test_drawing_tool_draws_gold_and_predicted_boxes(tmp_path):
    doc = next(d for d in MANIFEST if d["id"] == "plos-wheat")
    gold = json.loads((REAL / "gold" / "plos-wheat.json").read_text())["figures"]
    g = next(f for f in gold if f["page"] == 2)
    x0, y0, x1, y1 = g["bbox"]
    pred = [dict(g, bbox=[x0 + 30, y0 + 30, x1 - 30, y1 - 30], panels=[])]
    files = draw_gold.render(pdf_path(doc), [2], gold, pred, tmp_path, dpi=72)
    assert [f.name for f in files] == ["plos-wheat-p2.png"]
    im = Image.open(files[0]).convert("RGB")
    assert im.size == (612, 792)

    def near(wanted, box) -> bool:  # a pixel of the wanted hue on the box's left edge
        x = round(box[0])
        return any(
            wanted(*im.getpixel((x + dx, y)))
            for y in range(round(box[1]) + 10, round(box[3]) - 10)
            for dx in (-1, 0, 1)
        )

    def green(r, g, b):
        return g > r + 80 and g > b + 40

    def red(r, g, b):
        return r > g + 80 and r > b + 80

    assert near(green, g["bbox"]) and not near(red, g["bbox"])
    assert near(red, pred[0]["bbox"]) and not near(green, pred[0]["bbox"])


def test_gold_mentions_read_ligatures_ranges_and_broken_words():
    from tests.tools.gold_from_annot import cited_numbers

    assert cited_numbers("In \ufb01gure 4 it is shown") == {"4"}  # TeX's fi ligature
    assert cited_numbers("see Figs. 2\u20134 and Fig. 7") == {"2", "3", "4", "7"}
    assert cited_numbers("shown in fig- ure 1(c)") == {"1"}
    assert cited_numbers("Figures 5-6 show") == {"5", "6"}
    assert cited_numbers("Table 3 and 45 patients") == set()
    # a book numbered by chapter: "7-26" is one figure, not a range from 7 to 26
    assert cited_numbers("Note in Figure 7-26 that", chaptered=True) == {"7.26"}
    assert cited_numbers("see Figures 3-5 and 3-6", chaptered=True) == {"3.5", "3.6"}


def _gold(doc_id: str) -> list[dict]:
    return json.loads((REAL / "gold" / f"{doc_id}.json").read_text())["figures"]


def test_real_benchmark_scores_gold_against_itself_as_perfect():
    from tests.benchmarks.bench_real import score_doc

    gold = _gold("clinsci")
    res = score_doc(gold, [dict(f, label=f["label"].split()[-1]) for f in gold])  # "7" = "Figure 7"
    assert {m: s.prf()[2] for m, s in res["scores"].items()} == {
        "figure": 1.0,
        "pair": 1.0,
        "panel": 1.0,
        "mention": 1.0,
    }
    assert res["caption"] == [len(gold), len(gold)] and res["misses"] == []


def test_real_benchmark_counts_each_kind_of_miss():
    from tests.benchmarks.bench_real import score_doc

    gold = _gold("clinsci")
    fig6 = next(f for f in gold if f["label"] == "Figure 6")
    x0, y0, x1, y1 = fig6["bbox"]
    pred = [
        dict(fig6, bbox=[x0, y0, (x0 + x1) / 2, y1]),  # half the figure: not found
        dict(gold[0], caption="Figure 1 Structure"),  # found, caption cut short
        dict(gold[-1], panels=[dict(p, letter=None) for p in gold[-1]["panels"]]),  # no letters
    ]
    res = score_doc(gold, pred)
    s = res["scores"]
    assert (s["figure"].tp, s["figure"].fp, s["figure"].fn) == (2, 1, len(gold) - 2)
    assert (s["pair"].tp, s["pair"].fp) == (1, 2)
    assert s["panel"].tp == 1  # Figure 1's single panel; Figure 7's A and B are missed
    assert {"box_too_small_or_large", "caption_text", "not_found"} <= set(res["misses"])


def test_real_benchmark_reads_tuned_on_lines(tmp_path, monkeypatch):
    from tests.benchmarks import bench_real

    (tmp_path / "TUNED_ON.md").write_text(
        "# x\n- baseline: nothing | tuned on: (none)\n"
        "- abc123: running heads | tuned on: plos-wheat, iop-ees\n"
    )
    monkeypatch.setattr(bench_real, "REAL", tmp_path)
    assert bench_real.tuned_on() == {"baseline": [], "abc123": ["plos-wheat", "iop-ees"]}


def test_real_benchmark_counts_a_crash_as_every_figure_missed(monkeypatch):
    from tests.benchmarks import bench_real

    def crash(*args, **kwargs):
        raise ValueError("cannot drop alpha")

    monkeypatch.setattr("curation.extract.extract_book", crash)
    rows = bench_real.run_real(72, only=["gao-cyber"])
    r = rows["gao-cyber"]
    assert r["error"] == "ValueError: cannot drop alpha"
    assert r["scores"]["figure"].fn == 2 and r["misses"] == ["extractor_error"] * 2
