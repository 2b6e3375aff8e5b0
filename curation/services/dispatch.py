"""Queue background work after the current transaction commits, by task name.

This is the one module that sends Celery work, and it never imports ``workers``: a task is
named by its string (``send_task``), so ``workers`` imports ``curation`` and not the other way
round (an import-linter contract in pyproject.toml holds this). The queue comes from
``CELERY_TASK_ROUTES``, which matches names. Tests replace :func:`send` to see what was sent.

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

INGEST_CHUNK = "workers.ingest.ingest_chunk"
FINALIZE_INGEST = "workers.ingest.finalize_ingest"
DRAFT_PAIR = "workers.llm.draft_pair"
RENDER_CROPS = "workers.panels.render_crops"
BUILD_RELEASE = "workers.release.build_release"
MODALITY_RETRAIN_TASK = "workers.maintenance.retrain_modality"

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


def send(name: str, *args) -> None:
    """Send one task now. Under ``task_always_eager`` (tests, the bench's in-process server)
    ``send_task`` would still publish, so the task runs here instead, found by its name among
    the modules in ``CELERY_IMPORTS``."""
    from celery import current_app

    if current_app.conf.task_always_eager:
        current_app.loader.import_default_modules()
        current_app.tasks[name].apply(args=args, throw=current_app.conf.task_eager_propagates)
        return
    current_app.send_task(name, args=args)


def send_on_commit(name: str, *args) -> None:
    """Send a task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(name, *args))


def enqueue_ingest(book_id: int, run: int, ranges: list[tuple[int, int]]) -> Sending:
    def publish() -> None:
        for first, last in ranges:
            send(INGEST_CHUNK, book_id, run, first, last)

    return _send_ingest_work(book_id, run, publish, "ingest")


def enqueue_finalize(book_id: int, run: int) -> Sending:
    return _send_ingest_work(
        book_id, run, lambda: send(FINALIZE_INGEST, book_id, run), "finalising"
    )


def enqueue_drafting(pair_id: int) -> None:
    send_on_commit(DRAFT_PAIR, pair_id)


def enqueue_render(figure_id: int, pair_ids: list[int], figure_too: bool) -> None:
    send_on_commit(RENDER_CROPS, figure_id, sorted(set(pair_ids)), figure_too)


def enqueue_release_build(release_id: int, token: str) -> None:
    send_on_commit(BUILD_RELEASE, release_id, token)


def enqueue_modality_retrain(actor_id: int | None) -> None:
    send_on_commit(MODALITY_RETRAIN_TASK, actor_id)
