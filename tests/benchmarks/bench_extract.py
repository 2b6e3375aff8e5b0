"""Extraction benchmark on generated sample books and on the real-PDF corpus, and speed.

Run: `python tests/benchmarks/bench_extract.py [--pages 30] [--styles classic,varied,twocol]`
(both parts; `--real-only` or `--no-real` for one). The real-corpus part (`bench_real.py`)
scores hand gold on real publishers' PDFs per document, for dev, holdout and all, per producer
family (the leave-one-producer-out view) and against bare PyMuPDF; see its docstring.
Books come from both PDF producers (`--producer pymupdf|chromium|all`): PyMuPDF draws the
pages itself; Chromium prints the same kind of content set as HTML in other fonts, margins and
caption typography (see `curation/samplebook/chromium.py`). Scores figures (same page and
label, IoU >= 0.8), pairs (figure plus exact caption), panels (letter and IoU >= 0.7),
mentions ((label, page, paragraph) triples), caption exact match, modality per panel, age and
sex per figure, and false figures on tables and decorative images; a summary table gives one
row per producer and style, and per producer overall. Speed is pages per second of
`extract_book` against bare PyMuPDF reading every page's text and rendering it at the same dpi.
Peak memory is the maximum resident set size (VmHWM) of `python -m curation.extract` run as a
child process on a `--memory-pages` (default 1,000) page book, reported by the child itself, so
the benchmark's own memory is not counted; the target is under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from curation.extract import extract_book, imagecues  # noqa: E402
from curation.extract.annotate import modality_from_text, norm_label  # noqa: E402
from curation.samplebook import (  # noqa: E402
    PRODUCERS,
    STYLES,
    GoldBook,
    chapters_for_pages,
    generate_book,
)
from tests.benchmarks.bench_real import bare_pymupdf  # noqa: E402

FIGURE_IOU = 0.8  # the match rule: same page and label, box IoU >= 0.8
PANEL_IOU = 0.7  # a panel needs its letter and IoU >= 0.7


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class Score:
    """Counts of true positives, false positives and false negatives."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, tp: int = 0, fp: int = 0, fn: int = 0) -> None:
        self.tp += tp
        self.fp += fp
        self.fn += fn

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f


def score_book(gold: GoldBook, figures) -> dict:
    """Match extracted figures to gold ones and count every metric, overall and per style."""
    scores: dict[str, dict[str, Score]] = defaultdict(lambda: defaultdict(Score))
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    used: set[int] = set()

    def keys(g) -> list[str]:
        return ["all", f"kind:{g.style}", f"caption:{g.caption_position}", f"layout:{g.layout}"]

    for g in gold.figures:
        best, best_i = None, -1
        for i, f in enumerate(figures):
            if i in used or f.page != g.page:
                continue
            o = iou(f.bbox, g.bbox)
            same = norm_label(f.label) == norm_label(g.label)
            if o >= FIGURE_IOU and same and (best is None or o > iou(best.bbox, g.bbox)):
                best, best_i = f, i
        ks = keys(g)
        for k in ks:
            scores[k]["figure"].add(tp=best is not None, fn=best is None)
            ok_pair = best is not None and ws(best.caption) == ws(g.caption)
            scores[k]["pair"].add(tp=ok_pair, fn=not ok_pair)
        gold_m = {(m.page, ws(m.text)) for m in g.mentions}
        got_m = {(m.page, ws(m.text)) for m in best.mentions} if best else set()
        for k in ks:
            scores[k]["mention"].add(
                tp=len(gold_m & got_m), fp=len(got_m - gold_m), fn=len(gold_m - got_m)
            )
        if best is None:
            for k in ks:
                scores[k]["panel"].add(fn=len(g.panels))
            continue
        used.add(best_i)
        for flag in REVIEW_FLAGS:
            want, got = flag in g.flags, flag in best.flags
            names = [f"flag:{flag}"]
            if flag == "annotation_marks" and g.marks:
                names.append(f"flag:marks_{g.marks}")  # recall by how the marks were made
            for k in ks:
                for name in names:
                    scores[k][name].add(tp=want and got, fp=got and not want, fn=want and not got)
        if ws(best.caption) != ws(g.caption):
            for k in ks:
                scores[k]["pair"].add(fp=1)
        matched_p: set[int] = set()
        for gp in g.panels:
            hit = None
            for j, p in enumerate(best.panels):
                if (
                    j not in matched_p
                    and iou(p.bbox, gp.bbox) >= PANEL_IOU
                    and p.letter == gp.letter
                ):
                    hit = j
                    break
            for k in ks:
                scores[k]["panel"].add(tp=hit is not None, fn=hit is None)
                if hit is not None:
                    panel = best.panels[hit]
                    a = acc[f"{k}|modality"]
                    a[0] += panel.modality == gp.modality
                    a[1] += 1
                    # The pixel cue alone, and the final answer where the text is silent.
                    a = acc[f"{k}|modality_pixels_only"]
                    a[0] += imagecues.guess(panel.image_png)[0] == gp.modality
                    a[1] += 1
                    if modality_from_text(panel.subcaption)[0] is None:
                        a = acc[f"{k}|modality_text_silent"]
                        a[0] += panel.modality == gp.modality
                        a[1] += 1
                    s = acc[f"{k}|subcaption"]
                    s[0] += ws(best.panels[hit].subcaption) == ws(gp.subcaption)
                    s[1] += 1
            if hit is not None:
                matched_p.add(hit)
        for k in ks:
            scores[k]["panel"].add(fp=len(best.panels) - len(matched_p))
            for name, ok in (
                ("caption", ws(best.caption) == ws(g.caption)),
                ("age", best.age == g.age),
                ("sex", best.sex == g.sex),
                ("diagnosis", best.diagnosis == g.diagnosis),
                ("section", best.section == g.section),
            ):
                a = acc[f"{k}|{name}"]
                a[0] += ok
                a[1] += 1
    decoy_hits = 0
    for i, f in enumerate(figures):
        if i in used:
            continue
        scores["all"]["figure"].add(fp=1)
        scores["all"]["pair"].add(fp=1)
        scores["all"]["panel"].add(fp=len(f.panels))
        if any(d.page == f.page and iou(d.bbox, f.bbox) > 0.3 for d in gold.decoys):
            decoy_hits += 1
    return {"scores": scores, "acc": acc, "decoy_false_figures": decoy_hits}


REVIEW_FLAGS = ("face", "annotation_marks")


# The child reports its own peak: VmHWM, the high-water mark of the resident set of its address
# space, which exec starts afresh. ru_maxrss from wait4() or RUSAGE_CHILDREN is not used: Linux
# carries the parent's peak over fork and exec into the child's ru_maxrss (a 300 MB parent makes
# a child that only imports the extractor report 311 MB instead of 82 MB).
_CHILD = """
import sys
from curation.extract.__main__ import main
rc = main(sys.argv[1:]) if len(sys.argv) > 1 else 0
with open("/proc/self/status") as fh:
    print("VmHWM_kB", fh.read().split("VmHWM:")[1].split()[0])
sys.exit(rc)
"""


def _child_peak(args: list[str], log_path: Path) -> tuple[int, float, float]:
    """Run the extraction CLI with ARGS in a child process; (exit code, its peak RSS in MB,
    seconds). With no ARGS the child only imports the extractor."""
    with open(log_path, "w+") as log:
        t0 = time.perf_counter()
        rc = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], cwd=ROOT, stdout=log, stderr=log
        ).returncode
        seconds = time.perf_counter() - t0
        log.seek(0)
        text = log.read()
    found = re.findall(r"^VmHWM_kB (\d+)$", text, re.M)
    if rc != 0 or not found:
        raise RuntimeError(f"extraction child failed ({rc}): {text[-2000:]}")
    return rc, int(found[-1]) / 1024, seconds


def peak_memory(pages: int, seed: int, dpi: int, workdir: Path) -> dict:
    """Peak memory of the extraction CLI on a `pages`-page book (PyMuPDF producer)."""
    path = workdir / f"memory-{pages}.pdf"
    chapters = chapters_for_pages(pages)
    gold = generate_book(path, chapters=chapters, pages_per_chapter=6, seed=seed)
    while gold.page_count < pages:  # the chapter estimate runs a little short: top it up
        chapters += math.ceil((pages - gold.page_count) / 6) + 1
        gold = generate_book(path, chapters=chapters, pages_per_chapter=6, seed=seed)
    out = workdir / "memory-out"
    log = workdir / "memory.log"
    _, base_mb, _ = _child_peak([], log)
    _, peak_mb, seconds = _child_peak([str(path), "--out", str(out), "--dpi", str(dpi)], log)
    found = len(json.loads((out / "figures.json").read_text())["figures"])
    return {
        "pages": gold.page_count,
        "gold_figures": len(gold.figures),
        "figures": found,
        "peak_rss_mb": peak_mb,
        "imports_rss_mb": base_mb,
        "seconds": seconds,
    }


def print_memory(mem: dict) -> None:
    print(
        f"\n== Peak memory, {mem['pages']}-page book ({mem['figures']} figures found, "
        f"{mem['gold_figures']} in gold): `python -m curation.extract` in a child process, "
        f"peak RSS {mem['peak_rss_mb']:.0f} MB (target < 500 MB; interpreter and imports alone "
        f"{mem['imports_rss_mb']:.0f} MB) in {mem['seconds']:.1f} s, "
        f"{mem['pages'] / mem['seconds']:.1f} pages/s with crops written"
    )


def run(
    styles: list[str], pages: int, seed: int, dpi: int, workdir: Path, producer: str = "pymupdf"
) -> dict:
    report = {}
    for style in styles:
        path = workdir / f"{producer}-{style}.pdf"
        gold = generate_book(
            path,
            chapters=chapters_for_pages(pages),
            pages_per_chapter=6,
            seed=seed,
            style=style,
            producer=producer,
        )
        t0 = time.perf_counter()
        figures = extract_book(path, dpi=dpi)
        t_extract = time.perf_counter() - t0
        t_bare = bare_pymupdf(path, dpi)
        res = score_book(gold, figures)
        res["producer"] = producer
        res["pages"] = gold.page_count
        res["extract_pages_per_s"] = gold.page_count / t_extract
        res["bare_pages_per_s"] = gold.page_count / t_bare
        report[f"{producer}/{style}"] = res
    return report


def print_report(report: dict) -> None:
    for style, res in report.items():
        print(
            f"\n== {style}: {res['pages']} pages; extract {res['extract_pages_per_s']:.1f} "
            f"pages/s, bare PyMuPDF read+render {res['bare_pages_per_s']:.1f} pages/s; "
            f"false figures on tables/decorations: {res['decoy_false_figures']}"
        )
        print(f"{'subset':<22}{'metric':<10}{'P':>7}{'R':>7}{'F1':>7}{'n':>6}")
        for key in sorted(res["scores"], key=lambda k: (k != "all", k)):
            for metric, sc in res["scores"][key].items():
                p, r, f = sc.prf()
                print(f"{key:<22}{metric:<10}{p:7.3f}{r:7.3f}{f:7.3f}{sc.tp + sc.fn:6d}")
        print(f"{'subset':<22}{'accuracy':<12}{'acc':>7}{'n':>6}")
        for name in sorted(res["acc"]):
            key, metric = name.split("|")
            ok, n = res["acc"][name]
            if key == "all" or metric.startswith("modality"):
                print(f"{key:<22}{metric:<12}{ok / n if n else 0:7.3f}{n:6d}")


SUMMARY_F1 = ("figure", "pair", "panel", "mention")
SUMMARY_ACC = ("caption", "modality", "age", "sex")


def _merge(results: list[dict]) -> tuple[dict[str, Score], dict[str, list[int]]]:
    scores: dict[str, Score] = defaultdict(Score)
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for res in results:
        for metric, sc in res["scores"]["all"].items():
            scores[metric].add(sc.tp, sc.fp, sc.fn)
        for name, (ok, n) in res["acc"].items():
            key, metric = name.split("|")
            if key == "all":
                acc[metric][0] += ok
                acc[metric][1] += n
    return scores, acc


def summary_rows(report: dict) -> list[tuple[str, int, dict[str, Score], dict, dict]]:
    """One row per book, then one per producer and one over everything (counts summed)."""
    rows = []
    for name, res in report.items():
        rows.append((name, res["pages"], *_merge([res]), res))
    producers = list(dict.fromkeys(res["producer"] for res in report.values()))
    groups = [(p, [r for r in report.values() if r["producer"] == p]) for p in producers]
    if len(producers) > 1:
        groups.append(("all", list(report.values())))
    for p, results in groups:
        pages = sum(r["pages"] for r in results)
        agg = {
            "decoy_false_figures": sum(r["decoy_false_figures"] for r in results),
            "extract_pages_per_s": pages
            / sum(r["pages"] / r["extract_pages_per_s"] for r in results),
            "bare_pages_per_s": pages / sum(r["pages"] / r["bare_pages_per_s"] for r in results),
        }
        rows.append((f"{p}/ALL", pages, *_merge(results), agg))
    return rows


def print_summary(report: dict) -> None:
    print("\n== Summary per producer and style (F1; accuracy; speed in pages/s)")
    head = f"{'book':<22}{'pages':>6}{'figs':>6}"
    head += "".join(f"{m[:7] + ' F1':>11}" for m in SUMMARY_F1)
    head += "".join(f"{m[:8]:>9}" for m in SUMMARY_ACC)
    head += f"{'decoyFP':>8}{'extract':>9}{'bare':>7}"
    print(head)
    for name, pages, scores, acc, res in summary_rows(report):
        fig = scores["figure"]
        line = f"{name:<22}{pages:6d}{fig.tp + fig.fn:6d}"
        line += "".join(f"{scores[m].prf()[2]:11.3f}" for m in SUMMARY_F1)
        for m in SUMMARY_ACC:
            ok, n = acc.get(m, (0, 0))
            line += f"{ok / n if n else float('nan'):9.3f}"
        line += f"{res['decoy_false_figures']:8d}"
        line += f"{res['extract_pages_per_s']:9.1f}{res['bare_pages_per_s']:7.1f}"
        print(line)
    print("\n== Review flags per matched figure (precision / recall, gold count)")
    for name, _pages, scores, _acc, _res in summary_rows(report):
        cells = []
        for metric in sorted(m for m in scores if m.startswith("flag:")):
            sc = scores[metric]
            p, r, _ = sc.prf()
            cells.append(f"{metric[5:]} P {p:.3f} R {r:.3f} n {sc.tp + sc.fn}")
        print(f"{name:<22}" + "; ".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=30, help="pages per generated book")
    ap.add_argument(
        "--styles",
        default=",".join(STYLES),
        help='comma-separated; "random" draws a new style from the seed (use --seeds)',
    )
    ap.add_argument(
        "--producer",
        default="all",
        choices=[*PRODUCERS, "all"],
        help="which PDF producer makes the books (default: all of them)",
    )
    ap.add_argument("--seeds", type=int, default=1, help="books per style, seeds seed..seed+n-1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--quiet", action="store_true", help="print the summary table only")
    ap.add_argument(
        "--memory-pages",
        type=int,
        default=1000,
        help="pages of the book whose extraction peak memory is measured (0: skip)",
    )
    ap.add_argument("--real-only", action="store_true", help="only the real-PDF corpus")
    ap.add_argument("--no-real", action="store_true", help="only the generated books")
    ap.add_argument("--docs", default=None, help="real corpus: comma-separated document ids")
    ap.add_argument(
        "--pred-dir", default=None, help="real corpus: write each document's predictions here"
    )
    args = ap.parse_args(argv)
    real_summary = None
    if not args.no_real:
        from tests.benchmarks import bench_real

        rows = bench_real.run_real(
            args.dpi,
            args.docs.split(",") if args.docs else None,
            Path(args.pred_dir) if args.pred_dir else None,
        )
        real_summary = bench_real.summary_json(bench_real.print_real(rows))
        if args.real_only:
            if args.json:
                Path(args.json).write_text(json.dumps({"real": real_summary}, indent=1))
            return 0
    producers = list(PRODUCERS) if args.producer == "all" else [args.producer]
    mem = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.memory_pages > 0:
            mem = peak_memory(args.memory_pages, args.seed, args.dpi, Path(tmp))
        report = {}
        for producer in producers:
            for seed in range(args.seed, args.seed + args.seeds):
                res = run(args.styles.split(","), args.pages, seed, args.dpi, Path(tmp), producer)
                report.update({(f"{k}@{seed}" if args.seeds > 1 else k): v for k, v in res.items()})
    if not args.quiet:
        print_report(report)
    print_summary(report)
    if mem is not None:
        print_memory(mem)
    if args.json:
        flat = {
            s: {
                "producer": r["producer"],
                "pages": r["pages"],
                "extract_pages_per_s": r["extract_pages_per_s"],
                "bare_pages_per_s": r["bare_pages_per_s"],
                "decoy_false_figures": r["decoy_false_figures"],
                "scores": {
                    k: {m: dict(zip("prf", sc.prf(), strict=True)) for m, sc in v.items()}
                    for k, v in r["scores"].items()
                },
                "accuracy": {k: v[0] / v[1] if v[1] else None for k, v in r["acc"].items()},
            }
            for s, r in report.items()
        }
        if mem is not None:
            flat["memory"] = mem
        if real_summary is not None:
            flat["real"] = real_summary
        Path(args.json).write_text(json.dumps(flat, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
