"""Procedural stand-ins for the three image modalities of a dermatology atlas.

The pictures only need to look plausible to a human skimming the sample book and to carry the
colour statistics that real images of each modality have (skin tones, a dark circular
dermoscopy field, pink/purple H&E), so the extractor's image cues can be tested without
shipping copyrighted photographs. Everything is drawn from smooth noise so that PNGs stay small.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SKIN_TONES = [
    (236, 200, 172),
    (224, 180, 150),
    (205, 155, 120),
    (170, 120, 85),
    (120, 82, 58),
    (245, 214, 190),
]


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    gh = max(2, cells * h // max(h, w) + 1)
    gw = max(2, cells * w // max(h, w) + 1)
    grid = (rng.random((gh, gw)) * 255).astype(np.uint8)
    img = Image.fromarray(grid, "L").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _fractal(rng: np.random.Generator, h: int, w: int, octaves: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for i, cells in enumerate(octaves):
        amp = 0.5**i
        out += amp * smooth_noise(rng, h, w, cells)
        total += amp
    return out / total


def _blend(base: np.ndarray, color: tuple[int, int, int], alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend a flat colour over `base` (in place when float32, which is twice as fast)."""
    out = base.astype(np.float32, copy=False)
    a = alpha.astype(np.float32, copy=False)[..., None]
    out += (np.asarray(color, np.float32) - out) * a
    return out


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def clinical(rng: np.random.Generator, w: int = 600, h: int = 450) -> Image.Image:
    """Skin-coloured field with shading, erythematous plaques and silvery scale."""
    tone = np.asarray(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], np.float32)
    shade = _fractal(rng, h, w, (3, 7))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = (float(v) for v in rng.uniform(-1, 1, 2))
    light = 0.85 + 0.25 * (gx * (xx / w - 0.5) + gy * (yy / h - 0.5)) + 0.15 * (shade - 0.5)
    img = tone[None, None, :] * light[..., None]
    # Background cloth or shadow along one edge, as in real clinical photographs.
    if rng.random() < 0.6:
        edge = smooth_noise(rng, h, w, 4) * 0.15
        side = int(rng.integers(4))
        coord = [xx / w, 1 - xx / w, yy / h, 1 - yy / h][side]
        cloth_mask = np.clip((0.12 + edge - coord) * 25, 0, 1)
        cloth = rng.choice([(40, 70, 110), (35, 35, 40), (200, 205, 210)])
        img = _blend(img, tuple(int(v) for v in cloth), cloth_mask)
    lesion_field = _fractal(rng, h, w, (5, 11, 23))
    cx, cy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    focus = np.exp(-(((xx / w - cx) ** 2) + ((yy / h - cy) ** 2)) / rng.uniform(0.03, 0.09))
    lesion = np.clip((lesion_field * 0.7 + focus * 0.6 - 0.62) * 8, 0, 1)
    red = (int(rng.integers(170, 215)), int(rng.integers(60, 95)), int(rng.integers(60, 90)))
    img = _blend(img, red, lesion * 0.8)
    scale_noise = smooth_noise(rng, h, w, 60)
    scale = np.clip((scale_noise - 0.62) * 6, 0, 1) * lesion * rng.uniform(0.3, 0.8)
    img = _blend(img, (235, 232, 228), scale)
    return _to_image(img).filter(ImageFilter.SMOOTH)


def dermoscopic(rng: np.random.Generator, w: int = 600, h: int = 450) -> Image.Image:
    """Circular lit field on black with a brown lesion, pigment network and dots."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2 + rng.uniform(-10, 10), h / 2 + rng.uniform(-8, 8)
    radius = min(w, h) * rng.uniform(0.47, 0.56)
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    bg = (
        np.asarray((228, 178, 160), np.float32)
        * (0.9 + 0.2 * smooth_noise(rng, h, w, 5))[..., None]
    )
    img = bg
    lesion_field = _fractal(rng, h, w, (4, 9))
    rel = dist / radius
    lesion = np.clip((lesion_field * 0.5 + (0.75 - rel) * 0.9 - 0.35) * 6, 0, 1)
    brown = (int(rng.integers(110, 160)), int(rng.integers(65, 95)), int(rng.integers(40, 65)))
    img = _blend(img, brown, lesion * 0.85)
    period = rng.uniform(9, 15)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    warp = smooth_noise(rng, h, w, 14) * 6
    net = np.minimum(
        np.abs(np.sin((u + warp) / period * np.pi)), np.abs(np.sin(v / period * np.pi))
    )
    network = np.clip((0.25 - net) * 4, 0, 1) * lesion
    img = _blend(img, (60, 35, 25), network * 0.8)
    out = _to_image(img)
    draw = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(15, 60))):
        ang, rr = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.55) * radius
        px, py = cx + rr * np.cos(ang), cy + rr * np.sin(ang)
        s = rng.uniform(1.5, 4)
        draw.ellipse((px - s, py - s, px + s, py + s), fill=(45, 30, 35))
    arr = np.asarray(out, np.float32)
    vignette = np.clip((radius - dist) / (radius * 0.12), 0, 1) ** 0.7
    arr = arr * vignette[..., None]
    return _to_image(arr)


def histological(rng: np.random.Generator, w: int = 600, h: int = 450) -> Image.Image:
    """H&E-like section: pale background, eosin-pink stroma, a purple epidermis and nuclei."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.full((h, w, 3), (246, 240, 244), np.float32)
    tissue_field = _fractal(rng, h, w, (4, 12, 30))
    tilt = rng.uniform(-0.25, 0.25)
    surface = h * rng.uniform(0.12, 0.3) + tilt * (xx - w / 2) + 25 * smooth_noise(rng, h, w, 6)
    inside = np.clip((yy - surface) / 4, 0, 1)
    gaps = np.clip((tissue_field - 0.64) * 10, 0, 1)
    stroma = inside * (1 - gaps)
    pink = (int(rng.integers(215, 240)), int(rng.integers(120, 160)), int(rng.integers(170, 200)))
    img = _blend(base, pink, stroma * (0.6 + 0.4 * tissue_field))
    depth = yy - surface
    epidermis = np.clip(1 - np.abs(depth - 22) / 22, 0, 1) * inside
    img = _blend(img, (150, 90, 170), epidermis * 0.75)
    out = _to_image(img)
    draw = ImageDraw.Draw(out)
    surface_arr = surface
    n = int(rng.integers(350, 700))
    xs = rng.uniform(0, w, n)
    ys = rng.uniform(0, h, n)
    for x, y in zip(xs, ys, strict=True):
        yi, xi = min(int(y), h - 1), min(int(x), w - 1)
        d = y - surface_arr[yi, xi]
        if d < 0 or gaps[yi, xi] > 0.5:
            continue
        dense = d < 45
        if not dense and rng.random() < 0.55:
            continue
        rx, ry = rng.uniform(2, 4.5), rng.uniform(1.5, 3.5)
        shade = int(rng.integers(50, 95))
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=(shade, 30, shade + 60))
    return out.filter(ImageFilter.SMOOTH)


def face(rng: np.random.Generator, w: int = 600, h: int = 450) -> Image.Image:
    """A frontal face filling most of the frame, with a lesion on one cheek: the stand-in for
    a clinical photograph of a facial lesion, where the patient is identifiable.

    Drawn flat (oval, hair, shadowed eye sockets with whites and irises, brows, nose, mouth)
    and blurred a little: OpenCV's frontal-face Haar cascade finds about 19 in 20 of these at
    sizes from 200 to 800 px.
    """
    tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    bg = [(40, 70, 110), (35, 35, 40), (200, 205, 210), (120, 130, 120)]
    img = Image.new("RGB", (w, h), bg[int(rng.integers(len(bg)))])
    d = ImageDraw.Draw(img)
    fh = h * rng.uniform(0.78, 0.9)
    fw = min(fh * 0.74, w * 0.9)
    cx, cy = w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2
    x0, y0, x1, y1 = cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2
    hairs = [(40, 28, 20), (70, 50, 30), (20, 20, 20), (110, 80, 50)]
    hair = hairs[int(rng.integers(len(hairs)))]
    d.ellipse((x0 - fw * 0.05, y0 - fh * 0.08, x1 + fw * 0.05, y0 + fh * 0.55), fill=hair)
    d.ellipse((x0, y0 + fh * 0.08, x1, y1), fill=tone)

    def dark(f: float) -> tuple[int, int, int]:
        return (int(tone[0] * f), int(tone[1] * f), int(tone[2] * f))

    ey, ex, er = y0 + fh * 0.45, fw * 0.2, fw * 0.11
    for side in (-1, 1):
        ecx = cx + side * ex
        d.ellipse((ecx - er * 1.3, ey - er * 0.9, ecx + er * 1.3, ey + er * 0.7), fill=dark(0.55))
        d.ellipse(
            (ecx - er * 0.9, ey - er * 0.4, ecx + er * 0.9, ey + er * 0.4), fill=(235, 235, 230)
        )
        d.ellipse(
            (ecx - er * 0.55, ey - er * 0.4, ecx + er * 0.55, ey + er * 0.4), fill=(50, 35, 30)
        )
        brow = (ecx - er * 1.3, ey - er * 1.4, ecx + er * 1.3, ey - er * 1.5)
        d.line(brow, fill=hair, width=max(2, int(er * 0.35)))
    ny = y0 + fh * 0.66
    d.polygon([(cx, ey), (cx - fw * 0.08, ny), (cx + fw * 0.08, ny)], fill=dark(0.85))
    d.ellipse((cx - fw * 0.1, ny - fh * 0.02, cx + fw * 0.1, ny + fh * 0.03), fill=dark(0.7))
    my = y0 + fh * 0.8
    d.ellipse((cx - fw * 0.17, my - fh * 0.025, cx + fw * 0.17, my + fh * 0.03), fill=(150, 70, 70))
    # The lesion the photograph is about, on one cheek.
    lx = cx + rng.choice([-1, 1]) * fw * 0.27
    ly, lr = y0 + fh * 0.64, fw * rng.uniform(0.04, 0.07)
    d.ellipse((lx - lr, ly - lr * 0.8, lx + lr, ly + lr * 0.8), fill=(185, 80, 75))
    return img.filter(ImageFilter.GaussianBlur(max(1, w / 300)))


MARK_COLOURS = [(255, 255, 0), (255, 255, 255), (0, 0, 0), (0, 255, 0)]


def burn_marks(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Draw an arrow and/or a circle into the pixels, in one pure marker colour, as authors
    annotate photographs before publishing them."""
    out = img.copy()
    d = ImageDraw.Draw(out)
    w, h = out.size
    colour = MARK_COLOURS[int(rng.integers(len(MARK_COLOURS)))]
    if colour == (0, 0, 0) and (np.asarray(out.convert("L")) < 30).mean() > 0.1:
        colour = (255, 255, 0)  # no one draws black arrows on a dermoscopy's black frame
    width = 4  # a thin pen: strokes wider than the detector's opening read as areas
    kind = int(rng.integers(3))  # 0 arrow, 1 circle, 2 both
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65)
    if kind in (1, 2):
        r = min(w, h) * rng.uniform(0.12, 0.22)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=width)
    if kind in (0, 2):
        tail = (cx + w * rng.uniform(0.18, 0.3), cy - h * rng.uniform(0.18, 0.3))
        tip = (cx + w * 0.03, cy - h * 0.03)
        d.line((tail, tip), fill=colour, width=width)
        ang = np.arctan2(tip[1] - tail[1], tip[0] - tail[0])
        size = w * 0.04
        for da in (2.6, -2.6):
            d.line(
                (tip, (tip[0] + size * np.cos(ang + da), tip[1] + size * np.sin(ang + da))),
                fill=colour,
                width=width,
            )
    return out


DRAWERS = {"clinical": clinical, "dermoscopic": dermoscopic, "pathological": histological}


def draw(modality: str, rng: np.random.Generator, w: int = 600, h: int = 450) -> Image.Image:
    """Draw one image of the given modality (clinical | dermoscopic | pathological)."""
    return DRAWERS[modality](rng, w, h)


def png_bytes(img: Image.Image) -> bytes:
    """Encode as PNG; fixed settings keep the sample book byte-for-byte reproducible."""
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()
