"""Draw gold and predicted figure boxes on page renders, to check annotations and extractions.

    python tests/tools/draw_gold.py DOC --out DIR [--pred figures.json] [--pages 2,3] [--elements]

DOC is a corpus id (its PDF and gold/<id>.json are found through the manifest) or a PDF path
(then pass --gold). Gold figures are green, their captions blue and panels cyan; predicted
figures red, captions orange and panels magenta, each labelled. `--elements` also draws the
numbered text blocks (T), images (I) and drawing clusters (D) that annotation lines name.
Pages are those of the (cut) PDF, 1-based; by default every page with a gold or predicted box.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.tools.gold_from_annot import REAL, page_elements

GOLD = {"figure": (0, 0.65, 0), "caption": (0, 0.2, 0.9), "panel": (0, 0.7, 0.8)}
PRED = {"figure": (0.9, 0, 0), "caption": (1, 0.5, 0), "panel": (0.85, 0, 0.85)}
ELEMENT = {"T": (0.55, 0.55, 0.55), "I": (0.1, 0.3, 1), "D": (0.6, 0.1, 0.7)}


def _rect(page: pymupdf.Page, box, color, width: float, label: str | None, dashes=None) -> None:
    r = pymupdf.Rect(box)
    page.draw_rect(r, color=color, width=width, dashes=dashes)
    if label:
        y = r.y0 - 1 if r.y0 > 8 else r.y1 + 7
        page.insert_text((r.x0 + 1, y), label, fontsize=6.5, color=color)


def draw_figures(page: pymupdf.Page, figures: list[dict], colors: dict, tag: str) -> None:
    """Figure, caption and panel boxes of the figures on this page (1-based `page.number+1`)."""
    number = page.number + 1
    for f in figures:
        if f.get("page") == number:
            _rect(page, f["bbox"], colors["figure"], 1.3, f"{tag} {f.get('label')}")
            for p in f.get("panels", []):
                _rect(page, p["bbox"], colors["panel"], 0.7, p.get("letter") or "", (2, 2))
        cap_page = f.get("caption_page") or f.get("page")
        if f.get("caption_bbox") and cap_page == number:
            _rect(page, f["caption_bbox"], colors["caption"], 0.9, f"{tag} cap {f.get('label')}")


def draw_elements(page: pymupdf.Page) -> None:
    for eid, (box, _text) in page_elements(page).items():
        if ":" in eid:
            continue
        color = ELEMENT[eid[0]]
        r = pymupdf.Rect(box)
        page.draw_rect(r, color=color, width=0.4)
        x = r.x0 - 13 if eid[0] == "T" and r.x0 > 14 else r.x0 + 1
        page.insert_text((x, r.y0 + 6), eid, fontsize=6.5, color=(0.9, 0, 0.3))


def render(
    pdf: Path,
    pages: list[int] | None,
    gold: list[dict],
    pred: list[dict],
    out: Path,
    *,
    elements: bool = False,
    dpi: int = 100,
) -> list[Path]:
    """Write one PNG per page with the boxes drawn; returns the files."""
    doc = pymupdf.open(pdf)
    if pages is None:
        pages = sorted(
            {f["page"] for f in gold + pred}
            | {f.get("caption_page") or f["page"] for f in gold + pred}
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n in pages:
        # Element ids are read before anything is drawn: drawing adds clusters of its own.
        page = doc[n - 1]
        if elements:
            draw_elements(page)
        draw_figures(page, gold, GOLD, "G")
        draw_figures(page, pred, PRED, "P")
        target = out / f"{pdf.stem}-p{n}.png"
        page.get_pixmap(dpi=dpi).save(target)
        written.append(target)
    doc.close()
    return written


def _doc_pdf(doc: str) -> tuple[Path, Path | None]:
    path = Path(doc)
    if path.suffix.lower() == ".pdf":
        return path, None
    sys.path.insert(0, str(REAL))
    from fetch_corpus import load_manifest, pdf_path

    entry = next(d for d in load_manifest() if d["id"] == doc)
    return pdf_path(entry), REAL / "gold" / f"{doc}.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("doc", help="corpus id or PDF path")
    ap.add_argument("--out", required=True)
    ap.add_argument("--gold", default=None, help="gold figures.json (default: the corpus's)")
    ap.add_argument("--pred", default=None, help="an extractor's figures.json")
    ap.add_argument("--pages", default=None, help="comma-separated, 1-based")
    ap.add_argument("--elements", action="store_true")
    ap.add_argument("--dpi", type=int, default=100)
    args = ap.parse_args(argv)
    pdf, gold_path = _doc_pdf(args.doc)
    gold_path = Path(args.gold) if args.gold else gold_path
    gold = json.loads(gold_path.read_text())["figures"] if gold_path and gold_path.exists() else []
    pred = json.loads(Path(args.pred).read_text())["figures"] if args.pred else []
    pages = [int(p) for p in args.pages.split(",")] if args.pages else None
    for f in render(pdf, pages, gold, pred, Path(args.out), elements=args.elements, dpi=args.dpi):
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
