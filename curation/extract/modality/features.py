"""Features of a panel that say which modality it is, each with a reason to be there.

- stain: colour deconvolution into haematoxylin, eosin and DAB (``skimage.color.rgb2hed``):
  H&E is haematoxylin plus eosin whatever the share of pink, purple or white; IHC is DAB
  brown on a haematoxylin counterstain.
- field: the luminance and colour of rings from the centre to the corners; dermoscopy is a
  lit field that is often vignetted (black, grey or blue corners), a fundus photo a lit disc
  in black.
- texture: a uniform LBP histogram and GLCM (Haralick) statistics: nuclei are blobs at one
  scale, skin surface is fine and even, charts are flat regions and sharp lines.
- skin colour: share of skin-coloured pixels and the spread of their hue in Lab.
- flat colour: how much of the picture a few exact colours cover, edge density, greyness and
  near-white paper: charts, diagrams, X-rays.

Everything is computed on a SIZE x SIZE copy, so a panel costs a few milliseconds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from skimage.color import rgb2hed, rgb2lab
from skimage.feature import graycomatrix, graycoprops, local_binary_pattern

SIZE = 96
LBP_P, LBP_R = 8, 1

_yy, _xx = np.mgrid[0:SIZE, 0:SIZE]
_RADIUS = np.sqrt((_xx - SIZE / 2 + 0.5) ** 2 + (_yy - SIZE / 2 + 0.5) ** 2) / (SIZE / 2)
RINGS = [(0.0, 0.35), (0.35, 0.7), (0.7, 1.0), (1.0, 1.5)]  # the last one is the corners
_RING_MASKS = [(a <= _RADIUS) & (b > _RADIUS) for a, b in RINGS]
_BORDER = np.zeros((SIZE, SIZE), bool)
_BORDER[:4], _BORDER[-4:], _BORDER[:, :4], _BORDER[:, -4:] = True, True, True, True


def _names() -> list[str]:
    n = [f"hed_{c}_{s}" for c in "hed" for s in ("mean", "p90", "std")]
    n += ["hed_h_share", "hed_e_share", "hed_d_share", "hed_he_ratio"]
    n += [f"ring{i}_{s}" for i in range(len(RINGS)) for s in ("lum", "sat", "blue")]
    n += ["corner_dark", "border_std", "centre_minus_corner"]
    n += [f"lbp_{i}" for i in range(LBP_P + 2)]
    n += ["glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation"]
    n += ["skin_share", "lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_a_std", "lab_b_std"]
    n += ["hue_std", "sat_mean", "grey_share", "white_share", "dark_share"]
    n += ["top8_colours", "distinct_colours", "edge_density", "aspect"]
    return n


NAMES: list[str] = _names()


def prepare(image: bytes | Image.Image) -> tuple[np.ndarray, float]:
    """The SIZE x SIZE RGB array in [0, 1] and the picture's aspect ratio (w / h)."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
        image.draft("RGB", (SIZE * 2, SIZE * 2))  # JPEG: decode at a reduced scale
    w, h = image.size
    if w <= 0 or h <= 0:
        raise ValueError("empty image")
    img = image.convert("RGB")
    if min(w, h) >= SIZE * 4:
        img = img.reduce(max(1, min(w, h) // (SIZE * 2)))
    img = img.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(img, np.float32) / 255.0, w / h


def features(image: bytes | Image.Image) -> np.ndarray:
    """The feature vector of a picture, in the order of NAMES."""
    a, aspect = prepare(image)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    mx, mn = a.max(axis=2), a.min(axis=2)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    out: list[float] = []

    hed = rgb2hed(a)
    for c in range(3):
        ch = hed[..., c]
        out += [float(ch.mean()), float(np.percentile(ch, 90)), float(ch.std())]
    h, e, d = hed[..., 0], hed[..., 1], hed[..., 2]
    out += [float((h > 0.05).mean()), float((e > 0.05).mean()), float((d > 0.03).mean())]
    out.append(float(np.clip(h.mean(), 0, None) / (abs(e.mean()) + 0.01)))

    for m in _RING_MASKS:
        out += [float(lum[m].mean()), float(sat[m].mean()), float((b[m] - r[m]).mean())]
    corners = _RING_MASKS[-1]
    out.append(float((lum[corners] < 0.15).mean()))
    out.append(float(lum[_BORDER].std()))
    out.append(float(lum[_RING_MASKS[0]].mean() - lum[corners].mean()))

    grey8 = (lum * 255).astype(np.uint8)
    lbp = local_binary_pattern(grey8, LBP_P, LBP_R, method="uniform")
    hist, _ = np.histogram(lbp, bins=LBP_P + 2, range=(0, LBP_P + 2))
    out += (hist / hist.sum()).tolist()
    q = (lum * 31).astype(np.uint8)
    glcm = graycomatrix(q, [1, 2], [0, np.pi / 2], levels=32, symmetric=True, normed=True)
    for prop in ("contrast", "homogeneity", "energy", "correlation"):
        v = graycoprops(glcm, prop)
        out.append(float(np.nan_to_num(v).mean()))

    lab = rgb2lab(a)
    L, A, B = lab[..., 0], lab[..., 1], lab[..., 2]
    skin = (A > 5) & (A < 35) & (B > 5) & (B < 40) & (L > 20) & (L < 90) & (r > b)
    out.append(float(skin.mean()))
    out += [float(L.mean() / 100), float(A.mean() / 100), float(B.mean() / 100)]
    out += [float(A.std() / 100), float(B.std() / 100)]
    hue = np.arctan2(B, A)
    coloured = sat > 0.15
    out.append(float(hue[coloured].std()) if coloured.sum() > 10 else 0.0)
    out.append(float(sat.mean()))
    out.append(float((sat < 0.08).mean()))
    out.append(float((mn > 0.92).mean()))
    out.append(float((mx < 0.12).mean()))

    q4 = (a * 15).astype(np.int32)
    codes = (q4[..., 0] << 8) | (q4[..., 1] << 4) | q4[..., 2]
    counts = np.sort(np.bincount(codes.ravel(), minlength=4096))[::-1]
    out.append(float(counts[:8].sum() / codes.size))
    out.append(float(np.count_nonzero(counts) / codes.size))
    gy, gx = np.gradient(lum)
    out.append(float((np.hypot(gx, gy) > 0.15).mean()))
    out.append(float(np.log(aspect)))
    vec = np.asarray(out, np.float64)
    return np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)
