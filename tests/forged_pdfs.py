"""PDFs that lie about themselves, written for the ingest and upload tests.

`curation.samplebook.bad_pdfs` makes the broken uploads the validation names; these are the
hostile ones: a page tree that claims two billion pages, an image whose declared size is past
MuPDF's limit, and bytes that only start like a PDF.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A classic PDF (header, numbered objects, xref table, trailer) with object 1 as root."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def write_forged_page_count(path: str | Path, count: int = 2_000_000_000) -> Path:
    """One real page under a /Pages node whose /Count claims `count` pages."""
    path = Path(path)
    content = b"BT /F1 12 Tf 72 720 Td (A page) Tj ET"
    path.write_bytes(
        _raw_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            ]
        )
    )
    return path


def write_oversized_image(
    path: str | Path, page_count: int = 3, on_page: int = 3, side: int = 200_000
) -> Path:
    """A text book whose page `on_page` shows an image declared `side` x `side` pixels.

    The stream holds a small real PNG; only its /Width and /Height lie, so MuPDF refuses it
    with its "Overly large image" limit (FzErrorLimit) before decoding a byte.
    """
    path = Path(path)
    doc = pymupdf.open()
    for number in range(1, page_count + 1):
        page = doc.new_page()
        page.insert_text((72, 72), f"Chapter 1, page {number}. Plain body text.", fontsize=11)
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "PNG")
    page = doc[on_page - 1]
    xref = page.insert_image(pymupdf.Rect(72, 120, 400, 450), stream=buf.getvalue())
    page.insert_text((72, 470), "Fig. 1.1 Plaque psoriasis on the elbow.", fontsize=9)
    doc.xref_set_key(xref, "Width", str(side))
    doc.xref_set_key(xref, "Height", str(side))
    doc.save(path)
    doc.close()
    return path


def write_garbage_after_header(path: str | Path, size: int = 4096) -> Path:
    """A PDF header and then noise: passes the header sniff, MuPDF cannot open it."""
    path = Path(path)
    noise = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(b"%PDF-1.7\n" + noise.replace(b"%%EOF", b"%%EOX"))
    return path
