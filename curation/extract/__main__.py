"""CLI: `python -m curation.extract BOOK.pdf --out DIR [--dpi 200]`."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from . import FigureInfo, PdfError, extract_book, inspect_pdf


def _save_crop(png: bytes, crops: Path) -> str:
    name = hashlib.sha256(png).hexdigest() + ".png"
    target = crops / name
    if not target.exists():
        target.write_bytes(png)
    return f"crops/{name}"


def figure_json(f: FigureInfo, crops: Path) -> dict:
    """The figures.json record of one figure; crops are written content-addressed."""
    return {
        "label": f.label,
        "page": f.page,
        "bbox": list(f.bbox),
        "caption": f.caption,
        "caption_bbox": list(f.caption_bbox) if f.caption_bbox else None,
        "caption_page": f.caption_page,
        "image": _save_crop(f.image_png, crops),
        "panels": [
            {
                "letter": p.letter,
                "bbox": list(p.bbox),
                "subcaption": p.subcaption,
                "image": _save_crop(p.image_png, crops),
                "modality": p.modality,
                "modality_confidence": p.modality_confidence,
            }
            for p in f.panels
        ],
        "modality": f.modality,
        "modality_confidence": f.modality_confidence,
        "mentions": [{"page": m.page, "text": m.text} for m in f.mentions],
        "section": f.section,
        "diagnosis": f.diagnosis,
        "age": f.age,
        "sex": f.sex,
        "flags": f.flags,
    }


def main(argv: list[str] | None = None) -> int:
    """Extract one book to DIR/figures.json and DIR/crops/; a bad PDF exits 2 with one line."""
    ap = argparse.ArgumentParser(prog="python -m curation.extract", description=__doc__)
    ap.add_argument("pdf")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--max-pages", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1, help="processes for page chunks")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        info = inspect_pdf(args.pdf, max_pages=args.max_pages)
        figures = extract_book(args.pdf, dpi=args.dpi, workers=args.workers)
    except PdfError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    out = Path(args.out)
    crops = out / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    doc = {
        "source": str(args.pdf),
        "page_count": info.page_count,
        "figures": [figure_json(f, crops) for f in figures],
    }
    (out / "figures.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False), "utf-8")
    dt = time.perf_counter() - t0
    print(f"{len(figures)} figures from {info.page_count} pages in {dt:.1f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
