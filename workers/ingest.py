"""Ingest tasks on the ``ingest`` queue.

A book is split into page chunks run as a group; the chunk that completes the set (counted in
the database, under the book's row lock) queues the finalising task. The database, not a
chord counter in the result backend, decides completion: a redelivered chunk after a worker
was killed would otherwise be counted twice.

Each task first claims its work and then reports a heartbeat while it runs, so the ingest
sweep re-sends the work of a killed worker within a minute, and a second copy of a message
(redelivered or re-sent) does nothing while the first is alive or once it is done
(`curation.services.ingest_recovery`).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from curation import extract
from curation.extract.errors import describe_failure
from curation.extract.pagerender import render_pages
from curation.models import Textbook
from curation.services import ingest as ingest_service
from curation.services import ingest_recovery as recovery
from curation.services import modality as modality_service
from curation.services.storage import local_pdf_path

log = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}  # queue: CELERY_TASK_ROUTES


def _dpi() -> int:
    return settings.CROP_DPI


@shared_task(name="workers.ingest.ingest_chunk", **TASK_OPTIONS)
def ingest_chunk(book_id: int, run: int, first: int, last: int) -> None:
    chunk_id = recovery.claim_chunk(book_id, run, first)
    if chunk_id is None:
        return
    with recovery.heartbeat(recovery.touch_chunk, chunk_id):
        book = Textbook.objects.get(pk=book_id)
        try:
            path = local_pdf_path(book.file, book.sha256)
            modality_service.activate_for_extraction()  # the promoted classifier suggests
            result = extract.extract_chunk(path, first, last, dpi=_dpi())
            previews = render_pages(path, first, last, dpi=settings.PAGE_PREVIEW_DPI)
        except Exception as exc:
            if not isinstance(exc, extract.PdfError):
                log.exception("ingest of book %s pages %s-%s crashed", book_id, first, last)
            ingest_service.fail_ingest(book_id, run, describe_failure(exc, pages=(first, last)))
            return
        ingest_service.record_chunk(book_id, run, first, last, result, page_images=previews)


@shared_task(name="workers.ingest.finalize_ingest", **TASK_OPTIONS)
def finalize_ingest(book_id: int, run: int) -> None:
    if not recovery.claim_finalize(book_id, run):
        return
    with recovery.heartbeat(recovery.touch_finalize, book_id):
        book = Textbook.objects.get(pk=book_id)
        refs, orphans = ingest_service.link_inputs(book_id, run)
        try:
            path = local_pdf_path(book.file, book.sha256)
            modality_service.activate_for_extraction()
            link = extract.link_book(
                path,
                [extract.FigureRef(label=label, page=page) for label, page in refs],
                orphans,
                dpi=_dpi(),
            )
        except Exception as exc:
            if not isinstance(exc, extract.PdfError):
                log.exception("finalising book %s crashed", book_id)
            ingest_service.fail_ingest(
                book_id, run, f"linking figures across pages: {describe_failure(exc)}"
            )
            return
        ingest_service.finalize_ingest(book_id, run, link)
