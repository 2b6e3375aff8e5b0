"""OCR benchmark: scanned copies of born-digital PDFs, against their born-digital extraction.

Run: `python tests/benchmarks/bench_ocr.py [--pages 8] [--styles classic,varied,hard,twocol]
[--pdf A.pdf B.pdf ...] [--max-pages 6] [--dpi 200]`.

Each document (a generated sample book per style, and any real PDFs given with `--pdf`) is
rendered into an image-only copy (`ocr.scanned_copy`: every page one picture at `--dpi`), and
both are extracted. Scores:

- `pair F1 vs born`: a scanned-copy figure matches a born-digital one on the same page with box
  IoU >= 0.8 and caption similarity (difflib ratio) >= 0.9. The target is >= 0.85. This works
  for any PDF, so real ones need no gold.
- `pair F1 vs gold` (generated books): the same rule against the generator's gold figures, for
  the born-digital and the scanned extraction, so the scan's loss is seen apart from the
  extractor's own misses.
- `caption sim`: mean similarity of matched captions (1.0 = OCR read them exactly).
- the OCR engine: the installed `tesseract` when there is one, else PyMuPDF's built-in copy
  (`MMSKIN_OCR_ENGINE=pymupdf` forces it; see `ocr.engine`).
- speed: CPU seconds a page of the scanned extraction (this process and the tesseract program
  it runs), with OpenMP held to one thread, and the wall seconds beside it. CPU time is the
  one-core figure on a shared machine, where the wall clock also counts time waiting for a
  core. Target <= 1.5 s a page.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # one core: before Tesseract is loaded

import argparse
import difflib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pymupdf  # noqa: E402

from curation.extract import extract_book  # noqa: E402
from curation.extract.annotate import norm_label  # noqa: E402
from curation.extract.ocr import engine, scanned_copy  # noqa: E402
from curation.samplebook import generate_book  # noqa: E402

BOX_IOU = 0.8
SIMILARITY = 0.9


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(a.split()), " ".join(b.split())).ratio()


def match(reference: list, found: list, *, labels: bool = False) -> dict:
    """Greedy one-to-one matching by page, IoU and caption similarity; P/R/F1 and the mean
    similarity of the matched captions. `reference` items need page, bbox, caption (and label
    when `labels`)."""
    used: set[int] = set()
    sims = []
    for r in reference:
        best, best_j = 0.0, -1
        for j, f in enumerate(found):
            if j in used or f.page != r.page or iou(f.bbox, r.bbox) < BOX_IOU:
                continue
            if labels and norm_label(f.label) != norm_label(r.label):
                continue
            s = similarity(f.caption, r.caption)
            if s >= SIMILARITY and s > best:
                best, best_j = s, j
        if best_j >= 0:
            used.add(best_j)
            sims.append(best)
    tp = len(sims)
    p = tp / len(found) if found else 1.0
    r = tp / len(reference) if reference else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "reference": len(reference),
        "found": len(found),
        "matched": tp,
        "precision": p,
        "recall": r,
        "f1": f1,
        "caption_sim": sum(sims) / len(sims) if sims else None,
    }


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (the tesseract program)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def first_pages(src: Path, dst: Path, n: int | None) -> Path:
    """The first `n` pages of a PDF (all when None), so a long paper stays a short run."""
    doc = pymupdf.open(src)
    if n is None or doc.page_count <= n:
        doc.close()
        return src
    out = pymupdf.open()
    out.insert_pdf(doc, from_page=0, to_page=n - 1)
    out.save(dst)
    out.close()
    doc.close()
    return dst


def measure(name: str, pdf: Path, workdir: Path, dpi: int, gold=None) -> dict:
    scan = scanned_copy(pdf, workdir / f"{name.replace('/', '_')}.scan.pdf", dpi=dpi)
    pages = pymupdf.open(pdf).page_count
    born = extract_book(pdf)
    c0, w0 = cpu_seconds(), time.perf_counter()
    scanned = extract_book(scan)
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - w0
    row = {
        "document": name,
        "pages": pages,
        "vs_born": match(born, scanned),
        "cpu_s_per_page": cpu / pages,
        "wall_s_per_page": wall / pages,
    }
    if gold is not None:
        row["born_vs_gold"] = match(gold.figures, born, labels=True)
        row["scan_vs_gold"] = match(gold.figures, scanned, labels=True)
    return row


def _f(x) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'document':<34} {'pages':>5} {'born':>5} {'scan':>5} {'F1 vs born':>10} "
        f"{'cap sim':>7} {'gold born':>9} {'gold scan':>9} {'cpu s/p':>7} {'wall s/p':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        vb = r["vs_born"]
        print(
            f"{r['document'][:34]:<34} {r['pages']:>5} {vb['reference']:>5} {vb['found']:>5} "
            f"{vb['f1']:>10.3f} {_f(vb['caption_sim']):>7} "
            f"{_f(r.get('born_vs_gold', {}).get('f1')):>9} "
            f"{_f(r.get('scan_vs_gold', {}).get('f1')):>9} "
            f"{r['cpu_s_per_page']:>7.2f} {r['wall_s_per_page']:>8.2f}"
        )
    ref = sum(r["vs_born"]["reference"] for r in rows)
    found = sum(r["vs_born"]["found"] for r in rows)
    tp = sum(r["vs_born"]["matched"] for r in rows)
    p = tp / found if found else 1.0
    rec = tp / ref if ref else 1.0
    f1 = 2 * p * rec / (p + rec) if p + rec else 0.0
    pages = sum(r["pages"] for r in rows)
    cpu = sum(r["cpu_s_per_page"] * r["pages"] for r in rows) / pages
    wall = sum(r["wall_s_per_page"] * r["pages"] for r in rows) / pages
    print("-" * len(head))
    print(
        f"{'all (micro)':<34} {pages:>5} {ref:>5} {found:>5} {f1:>10.3f} {'':>7} {'':>9} "
        f"{'':>9} {cpu:>7.2f} {wall:>8.2f}"
    )
    print(
        f"\nOCR engine: {engine()}. Scanned copies: pair F1 {f1:.3f} (target >= 0.85); "
        f"{cpu:.2f} CPU s a page on one core (target <= 1.5), {wall:.2f} s wall"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pages", type=int, default=8, help="pages per generated book")
    ap.add_argument("--styles", default="classic,varied,hard,twocol", help="'' for none")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pdf", nargs="*", default=[], help="real born-digital PDFs to scan")
    ap.add_argument("--max-pages", type=int, default=6, help="of each --pdf (0: all)")
    ap.add_argument("--dpi", type=int, default=200, help="resolution of the scanned copies")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for style in [s for s in args.styles.split(",") if s]:
            path = work / f"{style}.pdf"
            gold = generate_book(
                path, chapters=1, pages_per_chapter=args.pages, seed=args.seed, style=style
            )
            rows.append(measure(f"generated/{style}", path, work, args.dpi, gold))
        for i, pdf in enumerate(args.pdf):
            src = Path(pdf)
            cut = first_pages(src, work / f"real{i}.pdf", args.max_pages or None)
            rows.append(measure(f"real/{src.stem}", cut, work, args.dpi))
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
