"""The panel image as a vision request carries it: a bounded `data:` URI.

Servers cap what they accept (OpenAI 20 MB, vLLM and Ollama by their own limits and the
model's context), and every byte is paid for in upload time at 32 requests in flight. So an
image is checked to decode, then sent as it is when it is within the bounds, else shrunk and
re-encoded as JPEG until it fits. When no size within the bounds can be reached the image is
refused with `ImageUnusable`, and drafting goes on from the text alone, labelled so.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass

from PIL import Image

#: Formats every vision server decodes; anything else is re-encoded.
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg"}
#: Below this many pixels on the long side an image is no use to a vision model.
MIN_SIDE = 64
QUALITIES = (85, 70, 55)


class ImageUnusable(ValueError):
    """The image cannot be sent: `reason` is a short word (undecodable, too_large, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PreparedImage:
    data_uri: str
    mime: str
    size_bytes: int  # of the encoded image, before base64
    width: int
    height: int
    reencoded: bool


def _open(data: bytes, decode: bool = True) -> Image.Image:
    """Open `data`; `decode=False` checks the file's structure (PNG chunk CRCs, JPEG markers)
    without decoding the pixels, which is all a pass-through needs and a fifth of the time."""
    if not data:
        raise ImageUnusable("missing", "the pair has no image bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if decode:
                img.load()
            else:
                img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageUnusable("too_large", f"too many pixels to decode safely ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageUnusable("undecodable", f"not a readable image ({e})") from None
    return img


def _uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def prepare_image(data: bytes, *, max_bytes: int, max_side: int) -> PreparedImage:
    """Check `data` decodes; return it as a data URI within `max_bytes` and `max_side`."""
    if max_bytes < 1 or max_side < MIN_SIDE:
        raise ValueError(f"max_bytes must be positive and max_side at least {MIN_SIDE}")
    img = _open(data, decode=False)
    fmt = img.format or ""
    if fmt in PASS_THROUGH and len(data) <= max_bytes and max(img.size) <= max_side:
        w, h = img.size
        mime = PASS_THROUGH[fmt]
        return PreparedImage(_uri(mime, data), mime, len(data), w, h, False)
    img = _open(data)  # verify() leaves the image unusable: open it again, decoding it
    rgb = img.convert("RGB")
    side = min(max_side, max(rgb.size))
    while side >= MIN_SIDE:
        scaled = rgb.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in QUALITIES:
            buf = io.BytesIO()
            scaled.save(buf, "JPEG", quality=quality, optimize=True)
            out = buf.getvalue()
            if len(out) <= max_bytes:
                w, h = scaled.size
                return PreparedImage(_uri("image/jpeg", out), "image/jpeg", len(out), w, h, True)
        side = int(side * 0.7)
    raise ImageUnusable(
        "too_large",
        f"a {img.size[0]}x{img.size[1]} image does not fit in {max_bytes} bytes "
        f"even at {MIN_SIDE} px and JPEG quality {QUALITIES[-1]}",
    )
