"""Queue background work after the current transaction commits.

Tasks are imported lazily: ``workers`` imports ``curation``, not the other way round.

Ingest messages are sent after the commit, so a broker that is down cannot undo the rows the
transaction wrote; an exception from an ``on_commit`` callback would instead escape to the
caller after the commit and leave a half-reported upload (a 500 for a book that exists). So
ingest sends report a broker failure instead of raising it: the run is marked unsent (the
sweep sends it once the broker is back) and the returned `Sending` says so to the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

# What a publish raises when the broker cannot be reached, after Celery's own retries (kombu
# wraps the transport's connection errors in it).
BROKER_ERRORS = (OperationalError,)


@dataclass
class Sending:
    """The outcome of a send queued for commit: None until then, then whether it left."""

    sent: bool | None = None

    @property
    def failed(self) -> bool:
        return self.sent is False


def _send_ingest_work(book_id: int, run: int, publish, what: str) -> Sending:
    sending = Sending()

    def send() -> None:
        try:
            publish()
        except BROKER_ERRORS as exc:
            sending.sent = False
            log.warning(
                "broker unavailable, %s for book %s run %s waits: %s", what, book_id, run, exc
            )
            from curation.services.ingest_recovery import mark_unsent

            try:
                mark_unsent(book_id, run)
            except Exception:  # the sweep still finds the run once it is idle long enough
                log.exception("could not mark book %s run %s as unsent", book_id, run)
            return
        sending.sent = True

    transaction.on_commit(send)
    return sending


def enqueue_ingest(book_id: int, run: int, ranges: list[tuple[int, int]]) -> Sending:
    def publish() -> None:
        from celery import group

        from workers.ingest import ingest_chunk

        group(ingest_chunk.si(book_id, run, first, last) for first, last in ranges).apply_async()

    return _send_ingest_work(book_id, run, publish, "ingest")


def enqueue_finalize(book_id: int, run: int) -> Sending:
    def publish() -> None:
        from workers.ingest import finalize_ingest

        finalize_ingest.delay(book_id, run)

    return _send_ingest_work(book_id, run, publish, "finalising")


def enqueue_drafting(pair_id: int) -> None:
    def send() -> None:
        from workers.llm import draft_pair

        draft_pair.delay(pair_id)

    transaction.on_commit(send)


MODALITY_RETRAIN_TASK = "workers.maintenance.retrain_modality"


def enqueue_modality_retrain(actor_id: int | None) -> None:
    """Send the retraining task by name once the request's transaction commits."""

    def send() -> None:
        from celery import current_app

        current_app.send_task(MODALITY_RETRAIN_TASK, args=[actor_id])

    transaction.on_commit(send)
