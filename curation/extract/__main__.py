"""CLI: `python -m curation.extract BOOK.pdf --out DIR [--dpi 200]`."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
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


class CropWriter:
    """Writes each figure's crops as soon as extraction hands them over and drops the bytes,
    so a long book streams through in bounded memory; remembers the file of every crop."""

    def __init__(self, crops: Path) -> None:
        self.crops = crops
        self.files: dict[int, tuple[str, list[str]]] = {}  # id(figure) -> (image, panel images)

    def __call__(self, figures: list[FigureInfo]) -> None:
        for f in figures:
            panel_files = [_save_crop(p.image_png, self.crops) for p in f.panels]
            self.files[id(f)] = (_save_crop(f.image_png, self.crops), panel_files)
            f.image_png = b""
            for p in f.panels:
                p.image_png = b""


def figure_json(f: FigureInfo, crops: Path, files: tuple[str, list[str]] | None = None) -> dict:
    """The figures.json record of one figure; crops are written content-addressed (or were
    already, by a `CropWriter`, whose file names come in `files`)."""
    image, panel_images = files or (
        _save_crop(f.image_png, crops),
        [_save_crop(p.image_png, crops) for p in f.panels],
    )
    return {
        "label": f.label,
        "page": f.page,
        "bbox": list(f.bbox),
        "caption": f.caption,
        "caption_bbox": list(f.caption_bbox) if f.caption_bbox else None,
        "caption_page": f.caption_page,
        "image": image,
        "panels": [
            {
                "letter": p.letter,
                "bbox": list(p.bbox),
                "subcaption": p.subcaption,
                "image": panel_image,
                "modality": p.modality,
                "modality_confidence": p.modality_confidence,
                "flags": p.flags,
                "confidence": p.confidence,
                "doubts": p.doubts,
            }
            for p, panel_image in zip(f.panels, panel_images, strict=True)
        ],
        "modality": f.modality,
        "modality_confidence": f.modality_confidence,
        "mentions": [{"page": m.page, "text": m.text} for m in f.mentions],
        "section": f.section,
        "diagnosis": f.diagnosis,
        "age": f.age,
        "sex": f.sex,
        "flags": f.flags,
        "confidence": f.confidence,
        "doubts": f.doubts,
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
    out = Path(args.out)
    crops = out / "crops"
    created = not crops.exists()
    try:
        info = inspect_pdf(args.pdf, max_pages=args.max_pages)
        crops.mkdir(parents=True, exist_ok=True)
        writer = CropWriter(crops)
        figures = extract_book(args.pdf, dpi=args.dpi, workers=args.workers, on_figures=writer)
    except PdfError as exc:
        if created:  # a damaged image found mid-book: leave no half-written crops behind
            shutil.rmtree(crops, ignore_errors=True)
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    doc = {
        "source": str(args.pdf),
        "page_count": info.page_count,
        "figures": [figure_json(f, crops, writer.files.get(id(f))) for f in figures],
    }
    (out / "figures.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False), "utf-8")
    dt = time.perf_counter() - t0
    print(f"{len(figures)} figures from {info.page_count} pages in {dt:.1f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
