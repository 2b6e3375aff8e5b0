"""Modality cues from pixels, to back up or stand in for caption keywords.

Dermoscopy is a lit disc in a dark frame; H&E is pink and purple on a pale background; charts
and diagrams are mostly bare paper with no tissue colour; clinical photographs are none of these.
Cheap statistics on a downsampled crop are enough to separate them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIZE = 96
CHART_WHITE = 0.55  # share of near-white pixels above which a crop is a chart or diagram


def features(image: bytes | Image.Image) -> dict[str, float]:
    """Colour and layout statistics of a crop (PNG bytes or an image), at SIZE pixels square."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    img = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BOX)
    a = np.asarray(img, np.float32) / 255.0
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    d = np.sqrt((xx - SIZE / 2 + 0.5) ** 2 + (yy - SIZE / 2 + 0.5) ** 2) / (SIZE / 2)
    corners = d > 1.08
    centre = d < 0.6
    corner_dark = float((lum[corners] < 0.12).mean()) if corners.any() else 0.0
    centre_lit = float(lum[centre].mean())
    # H&E: pink (r high, g lower, b high) and purple nuclei (b > g), with a pale background.
    pinkish = (r > 0.75) & (b > 0.6) & (g < r - 0.12) & (b > g + 0.05)
    purple = (b > r - 0.05) & (b > g + 0.15) & (lum < 0.55)
    skin = (r > g) & (g > b) & (r - b > 0.12) & (lum > 0.25)
    white = a.min(axis=2) > 0.92
    return {
        "white": float(white.mean()),
        "corner_dark": corner_dark,
        "centre_lit": centre_lit,
        "pink": float(pinkish.mean()),
        "purple": float(purple.mean()),
        "skin": float(skin.mean()),
    }


def guess(image: bytes | Image.Image) -> tuple[str, float]:
    """Modality suggested by the pixels alone, with a rough confidence."""
    f = features(image)
    if f["corner_dark"] > 0.7 and f["centre_lit"] > 0.3:
        return "dermoscopic", 0.6 + 0.3 * min(1.0, f["corner_dark"])
    if f["pink"] + f["purple"] > 0.35 and f["pink"] > 0.15:
        return "pathological", 0.55 + 0.35 * min(1.0, f["pink"] + f["purple"])
    if f["skin"] > 0.3:
        return "clinical", 0.5 + 0.3 * min(1.0, f["skin"])
    if f["white"] > CHART_WHITE and f["skin"] < 0.1 and f["pink"] + f["purple"] < 0.05:
        # Mostly bare paper with thin ink and no tissue colour: a chart, diagram or structure
        # drawn into a raster, not a photograph of skin.
        return "other", 0.6
    return "clinical", 0.35


def combine(
    image: bytes | Image.Image, text_modality: str | None, text_conf: float
) -> tuple[str, float]:
    """Merge text and pixel evidence: agreement raises confidence, the text wins ties."""
    img_mod, img_conf = guess(image)
    if text_modality is None:
        return img_mod, round(min(img_conf, 0.8), 3)
    if img_mod == text_modality:
        return text_modality, round(min(0.99, text_conf + 0.3 * (1 - text_conf)), 3)
    if img_conf > 0.8 and text_conf < 0.8:
        return img_mod, round(img_conf * 0.8, 3)
    if img_mod == "other" and text_modality == "clinical" and text_conf < img_conf:
        return "other", round(img_conf * 0.9, 3)  # a chart whose caption merely says "on the"
    return text_modality, round(text_conf * 0.85, 3)
