"""Queue background work after the current transaction commits.

Tasks are imported lazily: ``workers`` imports ``curation``, not the other way round.
"""

from __future__ import annotations

from django.db import transaction


def enqueue_ingest(book_id: int, run: int, ranges: list[tuple[int, int]]) -> None:
    def send() -> None:
        from celery import group

        from workers.ingest import ingest_chunk

        group(ingest_chunk.si(book_id, run, first, last) for first, last in ranges).apply_async()

    transaction.on_commit(send)


def enqueue_finalize(book_id: int, run: int) -> None:
    def send() -> None:
        from workers.ingest import finalize_ingest

        finalize_ingest.delay(book_id, run)

    transaction.on_commit(send)


def enqueue_drafting(pair_id: int) -> None:
    def send() -> None:
        from workers.llm import draft_pair

        draft_pair.delay(pair_id)

    transaction.on_commit(send)
