"""Keep ingest runs moving when workers die or messages vanish.

Three ways a run stops, and what brings it back (beat runs `resume_stalled_ingests` every
`INGEST_SWEEP_SECONDS`):

- A worker is killed while it runs a chunk (or the finalising task). `acks_late` only helps
  once the broker's visibility timeout (an hour on Redis) has passed. Instead the task claims
  its chunk and reports a heartbeat every `INGEST_HEARTBEAT_SECONDS`; a pending chunk whose
  heartbeat is older than `INGEST_HEARTBEAT_STALE_SECONDS` had its worker die and is re-sent.
- A message vanishes before any worker saw it: kombu's Redis transport hands a message out
  and records it as unacknowledged in two steps, so a worker killed between them loses it, and
  the embedded filesystem broker never redelivers. Such a chunk never got a heartbeat; when no
  chunk of the run moved for `INGEST_STALL_SECONDS` its pending chunks are re-sent.
- The broker was down when the run was queued (`mark_unsent`): the next sweep re-sends it.

Re-sending is safe: a chunk task does nothing for a chunk that is done or whose heartbeat is
fresh (another copy is running it), and recording a chunk or the finalisation twice changes
nothing (see `curation.services.ingest`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from curation.events import EventAction
from curation.models import IngestChunk, Textbook
from curation.services import dispatch
from curation.services.audit import record_event

log = logging.getLogger(__name__)

LIVE = (Textbook.Status.QUEUED, Textbook.Status.PROCESSING)


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.INGEST_HEARTBEAT_STALE_SECONDS)


# --- the worker's side: claim, then report while working ------------------------------------


def claim_chunk(book_id: int, run: int, first: int) -> int | None:
    """Take a chunk for this task copy: its id, or None when there is nothing to do.

    Nothing to do: the run was superseded or ended, the chunk is done, or another copy's
    heartbeat is fresh. No audit event: a claim is bookkeeping, not a decision.
    """
    with transaction.atomic():
        live = Textbook.objects.filter(pk=book_id, ingest_run=run, status__in=LIVE).exists()
        chunk = (
            IngestChunk.objects.select_for_update()
            .filter(textbook_id=book_id, run=run, first_page=first)
            .first()
        )
        if not live or chunk is None or chunk.status == IngestChunk.Status.DONE:
            return None
        now = timezone.now()
        if chunk.heartbeat_at is not None and chunk.heartbeat_at > _stale_before(now):
            return None
        IngestChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=now)
        return chunk.pk


def touch_chunk(chunk_id: int) -> None:
    """The worker running this chunk is alive (a plain UPDATE: no lock, no audit event)."""
    IngestChunk.objects.filter(pk=chunk_id, status=IngestChunk.Status.PENDING).update(
        heartbeat_at=timezone.now()
    )


def claim_finalize(book_id: int, run: int) -> bool:
    """Take the finalising task of a run, unless it ended or a live copy already runs it."""
    with transaction.atomic():
        book = (
            Textbook.objects.select_for_update()
            .filter(pk=book_id, ingest_run=run, status__in=LIVE)
            .first()
        )
        if book is None:
            return False
        now = timezone.now()
        beat = book.finalize_heartbeat_at
        if beat is not None and beat > _stale_before(now):
            return False
        Textbook.objects.filter(pk=book.pk).update(finalize_heartbeat_at=now)
        return True


def touch_finalize(book_id: int) -> None:
    Textbook.objects.filter(pk=book_id, status__in=LIVE).update(
        finalize_heartbeat_at=timezone.now()
    )


@contextlib.contextmanager
def heartbeat(touch: Callable[[int], None], key: int) -> Iterator[None]:
    """Call `touch(key)` every `INGEST_HEARTBEAT_SECONDS` from a thread while the body runs.

    A thread, because extraction is one long call into MuPDF that cannot report by itself; it
    dies with the process, which is the point. It uses (and closes) its own DB connection.
    """
    stop = threading.Event()
    every = settings.INGEST_HEARTBEAT_SECONDS

    def beat() -> None:
        try:
            while not stop.wait(every):
                try:
                    touch(key)
                except Exception:  # a missed beat is retried; the sweep tolerates a few
                    log.warning("ingest heartbeat for %s failed", key, exc_info=True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"ingest-heartbeat-{key}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --- the sweep --------------------------------------------------------------------------------


def mark_unsent(book_id: int, run: int) -> None:
    """The run's messages never reached the broker: make it look as idle as it is, so the
    first sweep after the broker is back re-sends it, instead of one `INGEST_STALL_SECONDS`
    later."""
    long_ago = timezone.now() - timedelta(seconds=settings.INGEST_STALL_SECONDS + 1)
    with transaction.atomic():
        book = Textbook.objects.select_for_update().filter(pk=book_id, ingest_run=run).first()
        if book is None:
            return
        IngestChunk.objects.filter(textbook=book, run=run).update(updated_at=long_ago)
        record_event(
            None,
            book,
            EventAction.INGEST_UNSENT,
            after={"run": run},
            note="the broker was unavailable; the next sweep after it is back sends the work",
        )


def resume_stalled_ingests(stalled_after_s: float | None = None) -> int:
    """Re-send the chunks (or the finalising task) of every run that stopped moving.

    `stalled_after_s` overrides `INGEST_STALL_SECONDS` for runs that made no progress at all.
    Returns how many runs were resumed.
    """
    wait = settings.INGEST_STALL_SECONDS if stalled_after_s is None else stalled_after_s
    now = timezone.now()
    resumed = 0
    for book_id in Textbook.objects.filter(status__in=LIVE).values_list("pk", flat=True):
        if _resume_one(book_id, now - timedelta(seconds=wait), _stale_before(now)):
            resumed += 1
    return resumed


def _last_move(book: Textbook, chunks: list[IngestChunk]) -> datetime | None:
    moments = [c.updated_at for c in chunks] + [c.heartbeat_at for c in chunks]
    moments.append(book.finalize_heartbeat_at)
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None


def _resume_one(book_id: int, idle_before: datetime, stale_before: datetime) -> bool:
    with transaction.atomic():
        # A book locked right now is recording a chunk: it is moving, look again next sweep.
        book = (
            Textbook.objects.select_for_update(skip_locked=True)
            .filter(pk=book_id, status__in=LIVE)
            .first()
        )
        if book is None:
            return False
        chunks = list(
            IngestChunk.objects.filter(textbook=book, run=book.ingest_run).order_by("first_page")
        )
        last_move = _last_move(book, chunks)
        if last_move is None:
            return False
        idle = last_move <= idle_before
        pending = [c for c in chunks if c.status == IngestChunk.Status.PENDING]
        dead = [c for c in pending if c.heartbeat_at is not None and c.heartbeat_at < stale_before]
        resend = pending if idle else dead
        finalize_dead = book.finalize_heartbeat_at is not None and (
            book.finalize_heartbeat_at < stale_before
        )
        finalize = not pending and (idle or finalize_dead)
        if not resend and not finalize:
            return False
        now = timezone.now()
        if resend:
            # Sent again and held by no one; touching them restarts the idle clock.
            IngestChunk.objects.filter(pk__in=[c.pk for c in resend]).update(
                heartbeat_at=None, updated_at=now
            )
            ranges = [(c.first_page, c.last_page) for c in resend]
            dispatch.enqueue_ingest(book.pk, book.ingest_run, ranges)
        else:  # every chunk is done, but the finalising task never ran or its worker died
            IngestChunk.objects.filter(textbook=book, run=book.ingest_run).update(updated_at=now)
            Textbook.objects.filter(pk=book.pk).update(finalize_heartbeat_at=None)
            dispatch.enqueue_finalize(book.pk, book.ingest_run)
        worker_lost = not idle
        record_event(
            None,
            book,
            EventAction.INGEST_RESUMED,
            after={
                "run": book.ingest_run,
                "chunks_resent": [[c.first_page, c.last_page] for c in resend],
                "finalize_resent": not resend,
                "reason": "worker_lost" if worker_lost else "no_progress",
            },
            note=(
                "its worker stopped reporting"
                if worker_lost
                else f"no progress since {last_move.isoformat()}"
            ),
        )
    return True
