"""Render boxes of a PDF page to PNG: the crops of panels an expert has redrawn.

Pure PyMuPDF, no Django. Boxes are ``[x0, y0, x1, y1]`` in PDF points in PyMuPDF's page
coordinates, which are those of the unrotated page (what `get_text` and `get_image_info`
report). A crop shows the region as a reader sees it: on a page with /Rotate it is rendered
turned with the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pymupdf

from .errors import PdfError
from .reader import unrotated_rect

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
            clip = page_clip(page, box)
            if clip is None:
                raise ValueError(f"The box {list(box)} lies outside page {page_number}.")
            images.append(page.get_pixmap(clip=clip, dpi=dpi, alpha=False).tobytes("png"))
        return images


def page_clip(page: pymupdf.Page, box: Box) -> pymupdf.Rect | None:
    """The `get_pixmap` clip for a box in PyMuPDF's page coordinates, cut to the page; None
    when nothing of it is on the page.

    The clip of `get_pixmap` is in the displayed (rotated) page, while boxes are not: on a page
    with /Rotate 90, the box of an image at the foot of the unrotated page is its right or left
    edge on screen. `page.rotation_matrix` maps one to the other; `page.rect` is the displayed
    frame, so boxes are cut to the unrotated frame before turning.
    """
    clip = pymupdf.Rect(*box) & unrotated_rect(page)
    if clip.is_empty:
        return None
    return clip * page.rotation_matrix


def render_box(path: str | Path, page_number: int, box: Box, *, dpi: int = 150) -> bytes:
    return render_boxes(path, page_number, [box], dpi=dpi)[0]
