"""Real-corpus part of the extraction benchmark: the extractor against hand gold on real PDFs.

Documents, gold and the dev/holdout split are in `tests/data/real/` (see its manifest and
TUNED_ON.md). Per document and summed over dev, holdout, fresh (the second, unseen holdout)
and all: figure, pair, panel and mention precision/recall/F1, caption match, and speed against
bare PyMuPDF. Then one row per producer family, which is the leave-one-producer-out view when
no rule was tuned on that family's documents: the table says, from TUNED_ON.md, which
families' documents rules were written on.

Match rules (the generated-book benchmark's, with text normalised for real PDFs):
- figure: same page, same figure number, box IoU >= 0.8, one-to-one;
- pair: a matched figure whose caption has similarity >= 0.95 to the gold caption, after
  normalisation (NFKC, so ligatures are letters; hyphens at line breaks joined; whitespace
  collapsed; case kept). A figure found with a wrong caption is a false pair and a missed one;
- caption: exact match after the same normalisation, over matched figures;
- panel: in a matched figure, same letter (case ignored; none = none) and IoU >= 0.7;
- mention: same page and one text mostly inside the other (>= 60 % of the shorter one's words),
  one-to-one, over matched figures and also counting the mentions of missed figures as misses.
"""

from __future__ import annotations

import difflib
import re
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
for p in (str(ROOT), str(REAL)):
    if p not in sys.path:
        sys.path.insert(0, p)

import json  # noqa: E402

from fetch_corpus import load_manifest, pdf_path  # noqa: E402

FIGURE_IOU = 0.8
PANEL_IOU = 0.7
PAIR_SIMILARITY = 0.95
MENTION_OVERLAP = 0.6
METRICS = ("figure", "pair", "panel", "mention")
# dev: rules may be written on it; holdout: scored only, but seen once (TUNED_ON.md); fresh: a
# second holdout added after that, annotated from renders and never run through rule-writing.
SPLITS = ("dev", "holdout", "fresh")


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def norm_text(text: str) -> str:
    """Caption text as compared: NFKC, line-break hyphens joined, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = re.sub(r"(\w)[\-\u00ad]\s+(\w)", r"\1\2", text)
    return re.sub(r"\s+", " ", text).strip()


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, norm_text(a), norm_text(b), autojunk=False).ratio()


def figure_number(label: str) -> str:
    """The figure's number: "Fig. 3" / "FIGURE 3." / "3" -> "3"; "7-26" and "7.26" agree."""
    m = re.search(r"\d+(?:[.\-\u2013]\d+)*[A-Za-z]?", label or "")
    return re.sub(r"[\-\u2013]", ".", m.group(0)).lower() if m else (label or "").lower()


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", norm_text(text).lower()))


def mention_match(g: dict, p: dict) -> bool:
    if g["page"] != p["page"]:
        return False
    a, b = _words(g["text"]), _words(p["text"])
    return bool(a and b) and len(a & b) / min(len(a), len(b)) >= MENTION_OVERLAP


class Score:
    """Counts of true positives, false positives and false negatives."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def _as_dict(f) -> dict:
    """A FigureInfo (from extract_book) or a figures.json record, as a plain dict."""
    if isinstance(f, dict):
        return f
    return {
        "label": f.label,
        "page": f.page,
        "bbox": list(f.bbox),
        "caption": f.caption,
        "panels": [{"letter": p.letter, "bbox": list(p.bbox)} for p in f.panels],
        "mentions": [{"page": m.page, "text": m.text} for m in f.mentions],
    }


def score_doc(gold: list[dict], predicted: list) -> dict:
    """Scores of one document: metric -> Score, plus caption matches and the misses by kind."""
    pred = [_as_dict(f) for f in predicted]
    s = {m: Score() for m in METRICS}
    caption_ok = caption_n = 0
    used: set[int] = set()
    misses: list[str] = []
    for g in gold:
        best, best_i, best_o = None, -1, 0.0
        for i, f in enumerate(pred):
            if i in used or f["page"] != g["page"]:
                continue
            if figure_number(f["label"]) != figure_number(g["label"]):
                continue
            o = iou(f["bbox"], g["bbox"])
            if o >= FIGURE_IOU and o > best_o:
                best, best_i, best_o = f, i, o
        if best is None:
            s["figure"].fn += 1
            s["pair"].fn += 1
            s["panel"].fn += len(g["panels"])
            s["mention"].fn += len(g["mentions"])
            misses.append(_why_missed(g, pred))
            continue
        used.add(best_i)
        s["figure"].tp += 1
        caption_n += 1
        caption_ok += norm_text(best["caption"]) == norm_text(g["caption"])
        if similarity(best["caption"], g["caption"]) >= PAIR_SIMILARITY:
            s["pair"].tp += 1
        else:
            s["pair"].fp += 1
            s["pair"].fn += 1
            misses.append("caption_text")
        taken: set[int] = set()
        for gp in g["panels"]:
            hit = next(
                (
                    j
                    for j, pp in enumerate(best["panels"])
                    if j not in taken
                    and (pp.get("letter") or "").lower() == (gp.get("letter") or "").lower()
                    and iou(pp["bbox"], gp["bbox"]) >= PANEL_IOU
                ),
                None,
            )
            if hit is None:
                s["panel"].fn += 1
            else:
                taken.add(hit)
                s["panel"].tp += 1
        s["panel"].fp += len(best["panels"]) - len(taken)
        if len(best["panels"]) != len(g["panels"]):
            misses.append("panel_count")
        taken = set()
        for gm in g["mentions"]:
            hit = next(
                (
                    j
                    for j, pm in enumerate(best["mentions"])
                    if j not in taken and mention_match(gm, pm)
                ),
                None,
            )
            if hit is None:
                s["mention"].fn += 1
            else:
                taken.add(hit)
                s["mention"].tp += 1
        s["mention"].fp += len(best["mentions"]) - len(taken)
    for i, f in enumerate(pred):
        if i not in used:
            s["figure"].fp += 1
            s["pair"].fp += 1
            s["panel"].fp += len(f["panels"])
            s["mention"].fp += len(f["mentions"])
            if not any(
                figure_number(g["label"]) == figure_number(f["label"]) and g["page"] == f["page"]
                for g in gold
            ):
                misses.append("false_figure")
    return {"scores": s, "caption": [caption_ok, caption_n], "misses": misses}


def _why_missed(g: dict, pred: list[dict]) -> str:
    """A short name for why a gold figure has no match, for the failure-class tally."""
    same = [
        f
        for f in pred
        if f["page"] == g["page"] and figure_number(f["label"]) == figure_number(g["label"])
    ]
    if same:
        best = max(iou(f["bbox"], g["bbox"]) for f in same)
        return "box_too_small_or_large" if best > 0.3 else "box_wrong_place"
    if any(figure_number(f["label"]) == figure_number(g["label"]) for f in pred):
        return "wrong_page"
    overlapping = [f for f in pred if f["page"] == g["page"] and iou(f["bbox"], g["bbox"]) > 0.3]
    if overlapping:
        return "wrong_label"
    return "not_found"


def tuned_on() -> dict[str, list[str]]:
    """TUNED_ON.md's rule lines: rule -> the document ids it was written after looking at."""
    text = (REAL / "TUNED_ON.md").read_text("utf-8")
    rules = {}
    for line in text.splitlines():
        m = re.match(r"^- (.+?):.*\|\s*tuned on:\s*(.*)$", line)
        if m:
            ids = [
                d.strip()
                for d in re.sub(r"\([^)]*\)", "", m.group(2)).split(",")
                if re.fullmatch(r"[a-z0-9-]+", d.strip())
            ]
            rules[m.group(1).strip()] = ids
    return rules


def bare_pymupdf(path: Path, dpi: int) -> float:
    """Seconds for PyMuPDF alone to read every page's text and render it at `dpi`."""
    import pymupdf

    t0 = time.perf_counter()
    doc = pymupdf.open(path)
    for page in doc:
        page.get_text("dict")
        page.get_pixmap(dpi=dpi).tobytes("png")
    doc.close()
    return time.perf_counter() - t0


def run_real(dpi: int = 150, only: list[str] | None = None, pred_dir: Path | None = None) -> dict:
    """Extract and score every document that has gold and a PDF here; rows keyed by doc id."""
    from curation.extract import extract_book

    rows = {}
    for doc in load_manifest():
        gold_file = REAL / "gold" / f"{doc['id']}.json"
        pdf = pdf_path(doc)
        if (only and doc["id"] not in only) or not gold_file.exists():
            continue
        if not pdf.exists():
            rows[doc["id"]] = {"doc": doc, "missing": True}
            continue
        gold = json.loads(gold_file.read_text("utf-8"))["figures"]
        t0 = time.perf_counter()
        try:
            figures, error = extract_book(pdf, dpi=dpi), None
        except Exception as exc:  # a crash on a real PDF is a result: every figure is missed
            figures, error = [], f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t0
        bare = bare_pymupdf(pdf, dpi)
        res = score_doc(gold, figures)
        if pred_dir is not None:
            pred_dir.mkdir(parents=True, exist_ok=True)
            (pred_dir / f"{doc['id']}.json").write_text(
                json.dumps({"figures": [_as_dict(f) for f in figures]}, indent=1)
            )
        if error:
            res["misses"] = ["extractor_error"] * len(gold)
        res.update(
            doc=doc, pages=len(doc["pages_kept"]), seconds=seconds, bare_seconds=bare, error=error
        )
        rows[doc["id"]] = res
    return rows


def _sum(rows: list[dict]) -> dict:
    total = {m: Score() for m in METRICS}
    cap = [0, 0]
    for r in rows:
        for m in METRICS:
            total[m].add(r["scores"][m])
        cap[0] += r["caption"][0]
        cap[1] += r["caption"][1]
    return {
        "scores": total,
        "caption": cap,
        "pages": sum(r["pages"] for r in rows),
        "seconds": sum(r["seconds"] for r in rows),
        "bare_seconds": sum(r["bare_seconds"] for r in rows),
        "misses": [x for r in rows for x in r["misses"]],
    }


HEAD = f"{'':<26}{'pages':>6}{'figs':>5}" + "".join(f"{m[:6] + ' P/R/F1':>21}" for m in METRICS)


def _line(name: str, r: dict) -> str:
    fig = r["scores"]["figure"]
    out = f"{name:<26}{r['pages']:6d}{fig.tp + fig.fn:5d}"
    for m in METRICS:
        p, rr, f = r["scores"][m].prf()
        out += f"   {p:5.2f} {rr:5.2f} {f:5.3f}"
    ok, n = r["caption"]
    out += f"  cap {ok / n if n else float('nan'):5.2f}"
    ratio = r["seconds"] / r["bare_seconds"] if r["bare_seconds"] else float("nan")
    out += f"  {r['pages'] / r['seconds']:6.1f} p/s ({ratio:4.1f}x bare)"
    return out


def print_real(rows: dict) -> dict:
    """Print the per-document, split, family and failure tables; returns the summary."""
    done = {k: r for k, r in rows.items() if not r.get("missing")}
    missing = [k for k, r in rows.items() if r.get("missing")]
    print("\n== Real corpus (tests/data/real): per document")
    print(HEAD + "  caption exact, speed")
    for split in SPLITS:
        for k, r in done.items():
            if r["doc"]["split"] == split:
                line = _line(f"{split[0]} {k} [{r['doc']['family']}]", r)
                print(line + (f"  CRASHED: {r['error'][:60]}" if r.get("error") else ""))
    summary = {}
    print("\n== Real corpus totals")
    print(HEAD)
    for name, sel in (
        *((split, [r for r in done.values() if r["doc"]["split"] == split]) for split in SPLITS),
        ("all", list(done.values())),
    ):
        if sel:
            summary[name] = _sum(sel)
            print(_line(f"{name} ({len(sel)} docs)", summary[name]))
    rules = tuned_on()
    seen_docs = {d for ids in rules.values() for d in ids}
    print(
        "\n== Per producer family (leave-one-producer-out: the score on a family that no rule"
        " was tuned on; 'tuned' names the docs of that family that rules looked at, from"
        " TUNED_ON.md)"
    )
    print(HEAD + "  tuned on")
    families = sorted({r["doc"]["family"] for r in done.values()})
    for fam in families:
        sel = [r for r in done.values() if r["doc"]["family"] == fam]
        agg = _sum(sel)
        summary[f"family:{fam}"] = agg
        tuned = sorted(k for k, r in done.items() if r["doc"]["family"] == fam and k in seen_docs)
        print(_line(f"{fam} ({len(sel)} docs)", agg) + "  " + (", ".join(tuned) or "none"))
    unseen = [r for r in done.values() if r["doc"]["family"] not in _families_seen(done, seen_docs)]
    if unseen:
        summary["unseen_families"] = _sum(unseen)
        print(_line(f"families no rule saw ({len(unseen)})", summary["unseen_families"]))
    tally: dict[str, int] = defaultdict(int)
    for x in summary.get("all", {"misses": []})["misses"]:
        tally[x] += 1
    print("\n== Failure classes (count over all documents)")
    for k, n in sorted(tally.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<26}{n:5d}")
    if missing:
        print(
            f"\n(not scored, PDF not here: {', '.join(missing)}; "
            "run tests/data/real/fetch_corpus.py with the source mirrors)"
        )
    return summary


def _families_seen(done: dict, seen_docs: set[str]) -> set[str]:
    return {r["doc"]["family"] for k, r in done.items() if k in seen_docs}


def summary_json(summary: dict) -> dict:
    out = {}
    for name, agg in summary.items():
        out[name] = {m: dict(zip("prf", agg["scores"][m].prf(), strict=True)) for m in METRICS} | {
            "caption_exact": agg["caption"][0] / agg["caption"][1] if agg["caption"][1] else None,
            "pages_per_s": agg["pages"] / agg["seconds"] if agg["seconds"] else None,
            "x_bare": agg["seconds"] / agg["bare_seconds"] if agg["bare_seconds"] else None,
        }
    return out
