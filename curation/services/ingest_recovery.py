"""Re-send the work of ingest runs that stopped moving.

`acks_late` covers a worker killed while it runs a task. It does not cover a message that
vanishes: kombu's Redis transport hands a message out and records it as unacknowledged in two
steps, so a worker killed between them loses it (seen in CI), and the embedded filesystem
broker never redelivers at all. The database knows which chunks of a run are still pending
and chunk tasks are idempotent, so re-sending them is safe; Celery beat runs this every minute.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from curation.models import IngestChunk, Textbook
from curation.services import dispatch
from curation.services.audit import record_event

LIVE = (Textbook.Status.QUEUED, Textbook.Status.PROCESSING)


def resume_stalled_ingests(stalled_after_s: float | None = None) -> int:
    """Re-send pending chunks (or the finalising task) of every run idle for too long.

    A run is idle when none of its chunks changed for `stalled_after_s` seconds (default
    `INGEST_STALL_SECONDS`, well above one chunk's run time). Returns how many runs were resumed.
    """
    wait = settings.INGEST_STALL_SECONDS if stalled_after_s is None else stalled_after_s
    cutoff = timezone.now() - timedelta(seconds=wait)
    resumed = 0
    for book_id in Textbook.objects.filter(status__in=LIVE).values_list("pk", flat=True):
        if _resume_one(book_id, cutoff):
            resumed += 1
    return resumed


def _resume_one(book_id: int, cutoff) -> bool:
    with transaction.atomic():
        book = Textbook.objects.select_for_update().filter(pk=book_id, status__in=LIVE).first()
        if book is None:
            return False
        chunks = IngestChunk.objects.filter(textbook=book, run=book.ingest_run)
        last_move = chunks.aggregate(last=Max("updated_at"))["last"]
        if last_move is None or last_move > cutoff:
            return False
        pending = list(
            chunks.filter(status=IngestChunk.Status.PENDING)
            .order_by("first_page")
            .values_list("pk", "first_page", "last_page")
        )
        if pending:
            # Touching them restarts the clock, so the next sweep waits again.
            IngestChunk.objects.filter(pk__in=[pk for pk, _, _ in pending]).update(
                updated_at=timezone.now()
            )
            dispatch.enqueue_ingest(book.pk, book.ingest_run, [(f, la) for _, f, la in pending])
        else:  # every chunk is done, but the finalising message never ran
            chunks.update(updated_at=timezone.now())
            dispatch.enqueue_finalize(book.pk, book.ingest_run)
        record_event(
            None,
            book,
            "ingest.resumed",
            after={
                "run": book.ingest_run,
                "chunks_resent": [[f, la] for _, f, la in pending],
                "finalize_resent": not pending,
            },
            note=f"no progress since {last_move.isoformat()}",
        )
    return True
