"""Where to cut a figure in two: the white gutter between its panels, not the middle.

Book figures put a band of paper between side-by-side (or stacked) photographs, and rarely in
the exact middle: a wide clinical photograph beside a narrow dermoscopy, say. Cutting in half
then leaves a strip of one panel in the other's crop. This module looks at the pixels of the
box being split and finds the white band nearest the cut the expert asked for.

Pure numpy and pillow, no Django: the panel editor's view hands it the page preview.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WHITE = 225  # grey level (0-255) that still counts as paper in a JPEG preview
WHITE_SHARE = 0.97  # share of a column's pixels that must be paper for it to be gutter
EDGE_SHARE = 0.08  # bands touching the box's outer 8 % are its margin, not a gutter
MIN_SIDE = 0.1  # a cut must leave at least a tenth of the box on each side


@dataclass(frozen=True)
class Gutter:
    """A cut position, as a fraction (0-1) of the box along the split axis."""

    at: float
    found: bool  # False: no white band, ``at`` is the fallback (the requested cut)
    width: float = 0.0  # the band's width, as a fraction of the box
    reason: str = ""


def whiteness(gray: np.ndarray, axis: int) -> np.ndarray:
    """Share of paper-white pixels in each column (``axis=1``) or row (``axis=0``)."""
    white = gray >= WHITE
    return white.mean(axis=0 if axis == 1 else 1)


def find_gutter(image: Image.Image | np.ndarray, *, vertical: bool, near: float = 0.5) -> Gutter:
    """The white band to cut along, nearest ``near`` (a fraction of the box).

    ``vertical`` cuts side by side (along a column); otherwise stacked (along a row). The
    band's middle is returned. Bands touching the box's edges are margins and are skipped;
    when no interior band exists the cut stays at ``near`` and ``found`` is False, so the
    editor can say it fell back.
    """
    gray = _gray(image)
    if gray.size == 0 or min(gray.shape) < 3:
        return Gutter(at=near, found=False, reason="The box is too small to look for a gutter.")
    share = whiteness(gray, axis=1 if vertical else 0)
    n = len(share)
    white = share >= WHITE_SHARE
    edge = max(1, round(n * EDGE_SHARE))
    lo, hi = max(edge, int(n * MIN_SIDE)), min(n - edge, int(np.ceil(n * (1 - MIN_SIDE))))
    bands = []
    start = None
    for i in range(n + 1):
        if i < n and white[i]:
            if start is None:
                start = i
            continue
        if start is not None:
            end = i  # exclusive
            if start > 0 and end < n:  # content on both sides: a gutter, not a margin
                middle = (start + end) / 2
                if lo <= middle <= hi:
                    bands.append((start, end, middle))
            start = None
    if not bands:
        return Gutter(
            at=near,
            found=False,
            reason="No white gutter in this box; it was cut where you asked.",
        )
    target = near * n
    # A thin white line inside a photograph is not a gutter: only bands at least a third as
    # wide as the widest one compete, and of those the nearest to the requested cut wins.
    widest = max(e - s for s, e, _ in bands)
    bands = [b for b in bands if b[1] - b[0] >= widest / 3]

    def score(band: tuple[int, int, float]) -> tuple[float, int]:
        s, e, m = band
        return (abs(m - target), -(e - s))

    start, end, middle = min(bands, key=score)
    return Gutter(at=middle / n, found=True, width=(end - start) / n)


def _gray(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=2)
    return array.astype(np.uint8)


def cut_box(
    image: Image.Image,
    page_size: tuple[float, float],
    box: list[float],
    *,
    vertical: bool,
) -> tuple[float, Gutter]:
    """Where to cut ``box`` (PDF points on a page of ``page_size``), in points, on a preview.

    The preview's scale is taken from its size against the page's, so any DPI works.
    """
    width, height = page_size
    sx, sy = image.width / float(width), image.height / float(height)
    x0, y0, x1, y1 = box
    crop = image.crop((round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
    gutter = find_gutter(crop, vertical=vertical)
    start, end = (x0, x1) if vertical else (y0, y1)
    return round(start + gutter.at * (end - start), 2), gutter
