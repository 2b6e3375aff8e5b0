"""Importing a textbook and (re)starting its ingest."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from curation import extract, limits
from curation.events import EventAction
from curation.extract.errors import describe_failure
from curation.models import IngestChunk, Textbook
from curation.services import dispatch
from curation.services.audit import record_event
from curation.services.errors import Conflict, UploadRejected
from curation.services.storage import content_path, store_file

_COPY_BLOCK = 1024 * 1024

log = logging.getLogger(__name__)


# What the upload answers when the book is stored but its ingest could not be queued yet.
BROKER_DOWN_MESSAGE = "queued; the broker is unavailable, it will start when it is back"


@dataclass(frozen=True)
class ImportResult:
    textbook: Textbook
    created: bool
    # True when the book was stored and queued but the broker refused the messages: the sweep
    # sends them once it is back (curation.services.ingest_recovery).
    waiting_for_broker: bool = False


@dataclass(frozen=True)
class BookMetadata:
    title: str = ""
    edition: str = ""
    authors: str = ""
    licence_note: str = ""


_METADATA_LIMITS = {
    "title": limits.TITLE,
    "edition": limits.EDITION,
    "authors": limits.AUTHORS,
    "licence_note": limits.LICENCE_NOTE,
}


def _spool(chunks: Iterable[bytes]) -> tuple[Path, str, int]:
    """Copy the upload to a temporary file, hashing it and stopping at the size limit."""
    tmp_dir = settings.VAR_DIR / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, suffix=".pdf")
    digest = hashlib.sha256()
    size = 0
    limit = settings.UPLOAD_MAX_BYTES
    try:
        with os.fdopen(fd, "wb") as out:
            for block in chunks:
                size += len(block)
                if size > limit:
                    raise UploadRejected(
                        "too_large",
                        f"The file is larger than the upload limit of {limit // (1024 * 1024)} MB.",
                        status=413,
                    )
                digest.update(block)
                out.write(block)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return Path(tmp_name), digest.hexdigest(), size


def _read_blocks(fileobj) -> Iterable[bytes]:
    if hasattr(fileobj, "chunks"):
        yield from fileobj.chunks(_COPY_BLOCK)
        return
    while block := fileobj.read(_COPY_BLOCK):
        yield block


def import_textbook(
    fileobj, *, filename: str, user=None, metadata: BookMetadata | None = None
) -> ImportResult:
    """Validate and store a PDF, create its Textbook and start ingest.

    The same bytes uploaded again return the existing book (``created`` False) and start
    nothing. A refused file raises ``UploadRejected`` and leaves nothing behind. A broker that
    is down does not refuse the book: it is stored and queued (``waiting_for_broker``), and
    the ingest sweep sends its work once the broker is back.
    """
    metadata = metadata or BookMetadata()
    for field, limit in _METADATA_LIMITS.items():
        limits.check_text(field, getattr(metadata, field), limit, field.replace("_", " "))
    tmp_path, sha, size = _spool(_read_blocks(fileobj))
    try:
        if size == 0:
            raise UploadRejected("empty", "The uploaded file is empty.")
        existing = Textbook.objects.filter(sha256=sha).first()
        if existing is not None:
            return ImportResult(existing, False)
        try:
            info = extract.inspect_pdf(tmp_path, max_pages=settings.UPLOAD_MAX_PAGES)
        except extract.PdfError as exc:
            status = 413 if exc.code == "too_many_pages" else 400
            raise UploadRejected(exc.code, describe_failure(exc), status=status) from exc
        except Exception as exc:  # MuPDF raises its own types for files it cannot read
            log.warning("upload %r could not be inspected", filename, exc_info=True)
            raise UploadRejected("corrupt", describe_failure(exc)) from exc
        stored = store_file(tmp_path, content_path("books", sha, "pdf"))
    finally:
        tmp_path.unlink(missing_ok=True)

    # The PDF's own metadata (title, author) is cut to fit rather than failing the upload.
    title = (metadata.title or info.title or Path(filename).stem or "Untitled").strip()
    title = title[: limits.TITLE]
    try:
        with transaction.atomic():
            book = Textbook.objects.create(
                title=title,
                edition=metadata.edition,
                authors=metadata.authors or info.author[: limits.AUTHORS],
                licence_note=metadata.licence_note,
                sha256=sha,
                file=stored,
                original_filename=Path(filename).name[:500],
                size_bytes=size,
                page_count=info.page_count,
                created_by=user if user is not None and user.is_authenticated else None,
            )
            record_event(
                user,
                book,
                EventAction.TEXTBOOK_IMPORTED,
                after={"title": title, "sha256": sha, "pages": info.page_count, "bytes": size},
            )
            sending = _start_ingest_locked(book, user)
    except IntegrityError:
        # Another upload of the same bytes won the race; theirs is the book.
        return ImportResult(Textbook.objects.get(sha256=sha), False)
    # (A test that replaces the dispatch module gets no Sending back: nothing was refused.)
    waiting = isinstance(sending, dispatch.Sending) and sending.failed
    return ImportResult(book, True, waiting_for_broker=waiting)


def chunk_ranges(page_count: int, chunk_pages: int) -> list[tuple[int, int]]:
    size = max(1, chunk_pages)
    return [(first, min(first + size - 1, page_count)) for first in range(1, page_count + 1, size)]


def start_ingest(book_id: int, user=None, *, force: bool = False) -> Textbook:
    """(Re-)run ingest. Expert decisions on existing pairs are kept; machine values refresh."""
    with transaction.atomic():
        book = Textbook.objects.select_for_update().get(pk=book_id)
        busy = book.status in (Textbook.Status.QUEUED, Textbook.Status.PROCESSING)
        if busy and not force:
            raise Conflict(
                "busy",
                "This book is being processed; wait for it to finish or force a restart.",
            )
        _start_ingest_locked(book, user)
    return book


def _start_ingest_locked(book: Textbook, user) -> dispatch.Sending:
    ranges = chunk_ranges(book.page_count, settings.INGEST_CHUNK_PAGES)
    book.ingest_run += 1
    book.status = Textbook.Status.QUEUED
    book.chunks_total = len(ranges)
    book.chunks_done = book.pages_done = book.figures_found = 0
    book.error = ""
    book.ingest_started_at = timezone.now()
    book.ingest_finished_at = None
    book.finalize_heartbeat_at = None
    book.save()
    IngestChunk.objects.bulk_create(
        IngestChunk(textbook=book, run=book.ingest_run, first_page=first, last_page=last)
        for first, last in ranges
    )
    record_event(
        user,
        book,
        EventAction.INGEST_STARTED,
        after={"run": book.ingest_run, "chunks": len(ranges)},
    )
    return dispatch.enqueue_ingest(book.pk, book.ingest_run, ranges)
