"""Panel splitter for composite images: one raster holding several panels with white gutters.

Publishers often paste a multi-panel figure into a single image. When the caption names more
panels than there are images, the image is cut along full-length white gutters (an XY cut on its
own pixels) and the pieces are mapped back to page coordinates.
"""

from __future__ import annotations

import numpy as np
import pymupdf

from .model import Box

WHITE = 235  # a gutter pixel is at least this bright in every channel
MIN_PANEL = 0.12  # a piece narrower/shorter than this share of the image is not a panel


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/stop of each run of False in `mask` (the content between white gutters)."""
    out, start = [], None
    for i, white in enumerate(mask):
        if not white and start is None:
            start = i
        elif white and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def _cut(gray: np.ndarray, x0: int, y0: int, x1: int, y1: int, depth: int) -> list[tuple]:
    region = gray[y0:y1, x0:x1]
    if region.size == 0:
        return []
    for axis in (1, 0) if depth % 2 == 0 else (0, 1):
        # axis 1: split into columns (white full-height columns); axis 0: into rows.
        white = (region >= WHITE).all(axis=0 if axis == 1 else 1)
        runs = _runs(white)
        total = gray.shape[1] if axis == 1 else gray.shape[0]
        runs = [r for r in runs if r[1] - r[0] >= MIN_PANEL * total]
        if len(runs) >= 2:
            pieces = []
            for a, b in runs:
                sub = (x0 + a, y0, x0 + b, y1) if axis == 1 else (x0, y0 + a, x1, y0 + b)
                if depth < 3:
                    pieces.extend(_cut(gray, *sub, depth + 1))
                else:
                    pieces.append(sub)
            return pieces
    # A leaf keeps its full extent: white inside a panel (an H&E slide's background) is content.
    return [(x0, y0, x1, y1)]


def split_composite(doc: pymupdf.Document, xref: int, bbox: Box) -> list[Box]:
    """Panels of a composite image in page coordinates, in reading order; [] when not one."""
    try:
        pix = pymupdf.Pixmap(doc, xref)
        if pix.colorspace is None:
            # A stencil mask (/ImageMask): alpha only, no picture of its own to cut. Dropping
            # its alpha raised "cannot drop alpha for 'NULL' colorspace" and failed the book.
            return []
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        if pix.n != 3:
            pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    except (RuntimeError, ValueError):
        return []
    arr = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width * 3]
    gray = arr.reshape(pix.height, pix.width, 3).min(axis=2)
    # Trim white margins around the whole composite, then cut along the gutters.
    ink_rows = np.where(~(gray >= WHITE).all(axis=1))[0]
    ink_cols = np.where(~(gray >= WHITE).all(axis=0))[0]
    if ink_rows.size == 0 or ink_cols.size == 0:
        return []
    x0, y0, x1, y1 = (
        int(ink_cols[0]),
        int(ink_rows[0]),
        int(ink_cols[-1]) + 1,
        int(ink_rows[-1]) + 1,
    )
    # A regular grid first: gutters that cross the whole composite cannot be confused with white
    # inside one panel. Only irregular layouts need the recursive cut.
    region = gray[y0:y1, x0:x1]
    rows = [
        r for r in _runs((region >= WHITE).all(axis=1)) if r[1] - r[0] >= MIN_PANEL * pix.height
    ]
    cols = [c for c in _runs((region >= WHITE).all(axis=0)) if c[1] - c[0] >= MIN_PANEL * pix.width]
    if len(rows) * len(cols) >= 2:
        pieces = [(x0 + a, y0 + b, x0 + c, y0 + d) for b, d in rows for a, c in cols]
    else:
        pieces = _cut(gray, x0, y0, x1, y1, 0)
    if len(pieces) < 2:
        return []
    sx = (bbox[2] - bbox[0]) / pix.width
    sy = (bbox[3] - bbox[1]) / pix.height
    boxes = [
        (
            round(bbox[0] + a * sx, 2),
            round(bbox[1] + b * sy, 2),
            round(bbox[0] + c * sx, 2),
            round(bbox[1] + d * sy, 2),
        )
        for a, b, c, d in pieces
    ]
    return boxes
