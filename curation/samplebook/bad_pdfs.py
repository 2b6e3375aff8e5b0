"""Broken uploads, one writer per failure the upload validation must name.

Each function writes one file to `path` and returns the path, so tests can build a fresh bad
input in a temporary folder without storing binary fixtures in the repository.
"""

from __future__ import annotations

import io
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image

from .book import generate_book

__all__ = [
    "write_broken_image",
    "write_empty",
    "write_encrypted",
    "write_not_pdf",
    "write_truncated",
    "write_zero_pages",
]


def write_empty(path: str | Path) -> Path:
    """A zero-byte file, as left behind by an interrupted upload."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_not_pdf(path: str | Path, kind: str = "html", seed: int = 0) -> Path:
    """Something else saved under a .pdf name: an HTML error page or random bytes."""
    path = Path(path)
    if kind == "html":
        path.write_text(
            "<!DOCTYPE html>\n<html><head><title>Download</title></head>\n"
            "<body><p>Your session has expired. Please sign in again.</p></body></html>\n",
            encoding="utf-8",
        )
    elif kind == "random":
        data = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        path.write_bytes(data.replace(b"%PDF", b"%PDX"))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


@lru_cache(maxsize=4)
def _sample_bytes(seed: int = 0) -> bytes:
    """A short valid sample book, made once per seed: the raw material of several bad inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample.pdf"
        generate_book(out, chapters=1, pages_per_chapter=3, seed=seed, unique_images=2)
        return out.read_bytes()


def write_truncated(path: str | Path, seed: int = 0) -> Path:
    """A valid sample book cut in half, as an aborted transfer leaves it."""
    path = Path(path)
    data = _sample_bytes(seed)
    path.write_bytes(data[: len(data) // 2])
    return path


def write_encrypted(path: str | Path, user_password: str = "secret") -> Path:
    """A sample book that cannot be opened without a user password."""
    path = Path(path)
    doc = pymupdf.open("pdf", _sample_bytes())
    doc.save(
        path,
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw=user_password,
        owner_pw=user_password + "-owner",
        permissions=0,
    )
    doc.close()
    return path


def write_zero_pages(path: str | Path) -> Path:
    """A well-formed PDF whose page tree is empty; written by hand as PyMuPDF refuses to."""
    path = Path(path)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        b"<< /Title (Empty book) /Producer (curation.samplebook) >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    path.write_bytes(bytes(out))
    return path


def write_broken_image(path: str | Path, seed: int = 0, page_count: int = 2) -> Path:
    """A valid PDF whose image stream on the last page is garbage of the declared length.

    The file opens and its pages list fine; only decoding the image fails, which is the case an
    upload check cannot see cheaply and extraction must report clearly.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    for i in range(page_count):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 90), f"Page {i + 1}. A short paragraph of body text.", fontsize=11)
    arr = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "PNG")
    page = doc[page_count - 1]
    xref = page.insert_image(pymupdf.Rect(120, 200, 440, 440), stream=buf.getvalue())
    page.insert_text((120, 460), "Fig. 1.1 An image whose data are damaged.", fontsize=9)
    data = doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    doc.close()
    head = re.search(rb"\n%d 0 obj\s*<<(.*?)>>\s*stream\r?\n" % xref, data, re.S)
    if head is None:
        raise RuntimeError("image object not found in the written PDF")
    length = int(re.search(rb"/Length (\d+)", head.group(1)).group(1))
    start = head.end()
    garbage = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(data[:start] + garbage + data[start + length :])
    return path
