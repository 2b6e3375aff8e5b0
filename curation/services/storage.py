"""Content-addressed files in the configured storage (local disk or S3-compatible)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_path(prefix: str, sha: str, ext: str) -> str:
    return f"{prefix}/{sha[:2]}/{sha}.{ext}"


def store_bytes(data: bytes, *, prefix: str, ext: str) -> str:
    """Store ``data`` once under its sha256; storing the same bytes again is a no-op."""
    name = content_path(prefix, sha256_bytes(data), ext)
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    return name


def store_file(local_path: Path, name: str) -> str:
    if default_storage.exists(name):
        return name
    with open(local_path, "rb") as fh:
        return default_storage.save(name, File(fh))


def local_pdf_path(name: str, sha: str) -> Path:
    """A local path PyMuPDF can open; remote storage is copied to a cache once."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        pass
    cache = settings.PDF_CACHE_DIR / f"{sha}.pdf"
    if cache.exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
        shutil.copyfileobj(src, out, length=1024 * 1024)
    os.replace(tmp, cache)
    return cache
