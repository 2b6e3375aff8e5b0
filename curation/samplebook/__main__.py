"""CLI: `python -m curation.samplebook OUT.pdf [--pages N] [--seed S] [--gold OUT.json]
[--producer pymupdf|chromium]`."""

from __future__ import annotations

import argparse
import sys
import time

from .book import PRODUCERS, STYLES, chapters_for_pages, generate_book


def main(argv: list[str] | None = None) -> int:
    """Write a sample book (and optionally its gold JSON) and report what was made."""
    ap = argparse.ArgumentParser(prog="python -m curation.samplebook", description=__doc__)
    ap.add_argument("out", help="PDF file to write")
    ap.add_argument("--pages", type=int, default=None, help="approximate page count")
    ap.add_argument("--pages-per-chapter", type=int, default=6)
    ap.add_argument("--chapters", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--title", default="Sample Atlas of Dermatology")
    ap.add_argument("--style", default="classic", choices=[*sorted(STYLES), "random"])
    ap.add_argument("--gold", default=None, help="write gold data JSON here")
    ap.add_argument(
        "--producer",
        default="pymupdf",
        choices=PRODUCERS,
        help="PyMuPDF draws the pages; chromium prints HTML with headless Chromium",
    )
    args = ap.parse_args(argv)
    chapters = args.chapters
    if args.pages:
        chapters = chapters_for_pages(args.pages, args.pages_per_chapter)
    t0 = time.perf_counter()
    gold = generate_book(
        args.out,
        chapters=chapters,
        pages_per_chapter=args.pages_per_chapter,
        seed=args.seed,
        title=args.title,
        style=args.style,
        producer=args.producer,
    )
    if args.gold:
        with open(args.gold, "w", encoding="utf-8") as fh:
            fh.write(gold.to_json())
    print(
        f"wrote {args.out}: {gold.page_count} pages, {len(gold.figures)} figures "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
