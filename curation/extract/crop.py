"""Render boxes of a PDF page to PNG: the crops of panels an expert has redrawn.

Pure PyMuPDF, no Django. Boxes are ``[x0, y0, x1, y1]`` in PDF points of the unrotated page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pymupdf

from .errors import PdfError

Box = Sequence[float]


def render_boxes(
    path: str | Path, page_number: int, boxes: Sequence[Box], *, dpi: int = 150
) -> list[bytes]:
    """PNG bytes of each box of the 1-based page, in order; one open of the file for all."""
    try:
        doc = pymupdf.open(path)
    except Exception as exc:  # PyMuPDF raises several types for unreadable files
        raise PdfError("corrupt", f"The PDF could not be opened: {exc}") from exc
    with doc:
        if not 1 <= page_number <= doc.page_count:
            raise ValueError(f"The PDF has no page {page_number}.")
        page = doc[page_number - 1]
        images = []
        for box in boxes:
            clip = pymupdf.Rect(*box) & page.rect
            if clip.is_empty:
                raise ValueError(f"The box {list(box)} lies outside page {page_number}.")
            images.append(page.get_pixmap(clip=clip, dpi=dpi, alpha=False).tobytes("png"))
        return images


def render_box(path: str | Path, page_number: int, box: Box, *, dpi: int = 150) -> bytes:
    return render_boxes(path, page_number, [box], dpi=dpi)[0]
