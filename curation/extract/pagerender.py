"""Whole-page previews for the review UI, where the expert sees the figure in its page."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from .errors import on_page


def render_pages(
    path: str | Path, first_page: int, last_page: int, *, dpi: int = 72, quality: int = 80
) -> dict[int, bytes]:
    """JPEG of each page in the 1-based inclusive range; small enough to keep for every page."""
    images: dict[int, bytes] = {}
    with pymupdf.open(path) as doc:
        for number in range(first_page, min(last_page, doc.page_count) + 1):
            with on_page(number):
                pix = doc[number - 1].get_pixmap(dpi=dpi, alpha=False)
                images[number] = pix.tobytes("jpeg", jpg_quality=quality)
    return images
