"""Review flags from pixels and vector paths: `face` and `annotation_marks`.

- face: OpenCV's bundled frontal-face Haar cascade on the panel crop (grayscale, histogram
  equalised, faces at least FACE_MIN_SIZE of the crop's short side, MIN_NEIGHBOURS agreeing
  windows), kept when the middle of the box is skin coloured (in colour images). cv2 is
  imported lazily; without it no face flag is set and one warning is logged.
- annotation_marks, vector: visible paths (`PageData.marks`) lying on a raster panel, that are
  not frames or rules spanning the panel (see `vector_marks`).
- annotation_marks, pixels (`burned_marks`): thin strokes of one marker colour (pure yellow,
  green, cyan, blue, magenta, red, white or black). A colour counts when enough of its pixels
  vanish under a morphological opening (5 px square), i.e. form lines, not areas: a dermoscopy
  frame is black but thick, skin and stains are never that saturated. Strokes along the crop's
  edges (frames, white gutters) are left out, and the rest must span MARK_MIN_SPAN of the short
  side, which a panel letter printed in white or black does not. Anti-aliased edges of a
  stroke drift from the pure colour, so strokes thinner than about 2 px at the crop's
  resolution are missed.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
from PIL import Image

from .model import Box

log = logging.getLogger(__name__)

FACE = "face"
ANNOTATION_MARKS = "annotation_marks"

NO_FACE_MODALITIES = ("dermoscopic", "pathological")
FACE_MIN_SIZE = 0.25  # smallest face, as a share of the crop's short side
MIN_NEIGHBOURS = 5
FACE_SKIN_SHARE = 0.4  # share of skin-coloured pixels in the middle of a face box
FACE_MAX_SIDE = 800  # crops are downsampled to this before detection (speed)

MARK_MIN_SHARE = 0.0015  # marker-coloured pixels needed, as a share of the crop
MARK_MAX_SHARE = 0.12  # more than this is a coloured area, not strokes
MARK_MAX_SIDE = 600
MARK_OPEN = 2  # opening radius: strokes up to 2 * MARK_OPEN px wide count as lines
MARK_BORDER = 0.04  # strokes in this band along the edges are frames or gutters, left out
MARK_MIN_SPAN = 0.18  # strokes must reach this far (share of the short side): not a letter

# Marker colours: (name, test on an RGB uint8 array).
_MARKERS = {
    "yellow": lambda r, g, b: (r > 225) & (g > 225) & (b < 60),
    "green": lambda r, g, b: (g > 200) & (r < 60) & (b < 60),
    "cyan": lambda r, g, b: (g > 200) & (b > 200) & (r < 60),
    "blue": lambda r, g, b: (b > 200) & (r < 60) & (g < 80),
    "magenta": lambda r, g, b: (r > 200) & (b > 200) & (g < 60),
    "red": lambda r, g, b: (r > 220) & (g < 40) & (b < 40),
    "white": lambda r, g, b: (r > 250) & (g > 250) & (b > 250),
    "black": lambda r, g, b: (r < 8) & (g < 8) & (b < 8),
}

_warned = False


@lru_cache(maxsize=1)
def _cascade():
    """The frontal-face cascade, or None (warned once) when OpenCV is not installed."""
    global _warned
    try:
        import cv2
    except ImportError:
        if not _warned:
            log.warning("opencv-python-headless is not installed: no face flags are set")
            _warned = True
        return None
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        log.warning("OpenCV's frontal-face cascade did not load: no face flags are set")
        return None
    return cascade


def face_boxes(img: Image.Image) -> list[tuple[int, int, int, int]]:
    """Faces found in the image, as (x, y, w, h) in its pixels; [] without OpenCV."""
    cascade = _cascade()
    if cascade is None:
        return []
    import cv2

    scale = min(1.0, FACE_MAX_SIDE / max(img.width, img.height))
    small = img
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        small = img.resize(size, Image.Resampling.BILINEAR)
    gray = np.asarray(small.convert("L"))
    if min(gray.shape) < 24:
        return []
    gray = cv2.equalizeHist(gray)
    side = max(24, int(min(gray.shape) * FACE_MIN_SIZE))
    found = cascade.detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=MIN_NEIGHBOURS, minSize=(side, side)
    )
    rgb = np.asarray(small.convert("RGB")).astype(np.int16)
    return [
        tuple(int(v / scale) for v in f)  # type: ignore[misc]
        for f in found
        if _skin_like(rgb, *(int(v) for v in f))
    ]


def _skin_like(rgb: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    """Whether the middle of a face box is skin coloured (red > green > blue), or the image is
    grey. Nuclei scattered on H&E stroma can fool the cascade; pink and purple are not skin."""
    if int(np.abs(rgb[..., 0] - rgb[..., 2]).mean()) < 8:
        return True  # a greyscale photograph: no colour to judge by
    mid = rgb[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4]
    if mid.size == 0:
        return False
    r, g, b = mid[..., 0], mid[..., 1], mid[..., 2]
    skin = (r > g) & (g > b) & (r - b > 15)
    return float(skin.mean()) >= FACE_SKIN_SHARE


def has_face(img: Image.Image) -> bool:
    return bool(face_boxes(img))


def _erode(mask: np.ndarray, r: int = 2) -> np.ndarray:
    """Binary erosion with a (2r+1)-square: a pixel stays if its whole neighbourhood is set."""
    out = mask.copy()
    padded = np.pad(mask, r, constant_values=False)
    h, w = mask.shape
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out &= padded[dy : dy + h, dx : dx + w]
    return out


def _dilate(mask: np.ndarray, r: int = 2) -> np.ndarray:
    return ~_erode(~mask, r)


def marker_strokes(img: Image.Image) -> list[str]:
    """Marker colours drawn as thin strokes on the image (see the module notes)."""
    scale = min(1.0, MARK_MAX_SIDE / max(img.width, img.height))
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        # NEAREST keeps stroke colours pure; a smoothing filter would blend them away.
        img = img.resize(size, Image.Resampling.NEAREST)
    a = np.asarray(img.convert("RGB"))
    r, g, b = (a[..., i].astype(np.int16) for i in range(3))
    total = a.shape[0] * a.shape[1]
    short = min(a.shape[:2])
    band = max(2, int(MARK_BORDER * short))
    found = []
    for name, test in _MARKERS.items():
        mask = test(r, g, b)
        if mask.sum() < max(30, MARK_MIN_SHARE * total):
            continue
        # What a morphological opening removes: lines thinner than 5 px, not areas (a black
        # dermoscopy frame stays, an arrow drawn over it goes).
        thin = mask & ~_dilate(_erode(mask, MARK_OPEN), MARK_OPEN)
        thin[:band, :] = thin[-band:, :] = False
        thin[:, :band] = thin[:, -band:] = False
        n = int(thin.sum())
        if not max(30, MARK_MIN_SHARE * total) <= n <= MARK_MAX_SHARE * total:
            continue
        ys, xs = np.nonzero(thin)
        span = max(
            np.percentile(xs, 98) - np.percentile(xs, 2),
            np.percentile(ys, 98) - np.percentile(ys, 2),
        )
        if span >= MARK_MIN_SPAN * short:
            found.append(name)
    return found


def burned_marks(img: Image.Image) -> bool:
    return bool(marker_strokes(img))


def _share_inside(a: Box, b: Box) -> float:
    a = (a[0] - 0.5, a[1] - 0.5, a[2] + 0.5, a[3] + 0.5)  # a straight line has no area
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area = (a[2] - a[0]) * (a[3] - a[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / area


def vector_marks(panel: Box, paths: list[Box]) -> list[Box]:
    """Visible vector paths drawn on a raster panel (both boxes in one space): mostly inside
    it, and not spanning it (frames, borders and rules do)."""
    pw, ph = panel[2] - panel[0], panel[3] - panel[1]
    out = []
    for p in paths:
        w, h = p[2] - p[0], p[3] - p[1]
        if w >= 0.9 * pw or h >= 0.9 * ph:
            continue
        if max(w, h) < 2.0:  # a dot or a speck of ruling
            continue
        if _share_inside(p, panel) >= 0.6:
            out.append(p)
    return out


def panel_flags(
    img: Image.Image | None, panel: Box, paths: list[Box], modality: str = "clinical"
) -> list[str]:
    """Flags for one raster panel: its rendered crop (vector marks included) and the page's
    visible paths. Faces are looked for in clinical photographs only: dermoscopy fields and
    stained sections hold none, and their dots and rings are what fools the cascade."""
    flags = []
    if vector_marks(panel, paths) or (img is not None and burned_marks(img)):
        flags.append(ANNOTATION_MARKS)
    if img is not None and modality not in NO_FACE_MODALITIES and has_face(img):
        flags.append(FACE)
    return flags
