"""Ingest runs whose messages were lost are resumed from what the database knows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import IngestChunk, ReviewEvent, Textbook
from curation.services import dispatch
from curation.services.ingest_recovery import resume_stalled_ingests
from tests.factories import make_book


@pytest.fixture
def sent(monkeypatch):
    """What would have been queued, instead of queueing it."""
    log: list[tuple] = []
    monkeypatch.setattr(dispatch, "enqueue_ingest", lambda *a: log.append(("chunks", *a)))
    monkeypatch.setattr(dispatch, "enqueue_finalize", lambda *a: log.append(("finalize", *a)))
    return log


def _run(book, ranges, done=(), minutes_idle=30):
    book.status, book.ingest_run = Textbook.Status.PROCESSING, 1
    book.save()
    for first, last in ranges:
        IngestChunk.objects.create(
            textbook=book,
            run=1,
            first_page=first,
            last_page=last,
            status=IngestChunk.Status.DONE if first in done else IngestChunk.Status.PENDING,
        )
    old = timezone.now() - timedelta(minutes=minutes_idle)
    IngestChunk.objects.filter(textbook=book).update(updated_at=old)


def test_pending_chunks_of_an_idle_run_are_resent_once(db, sent):
    book = make_book(pages=6)
    _run(book, [(1, 2), (3, 4), (5, 6)], done={3})
    assert resume_stalled_ingests(stalled_after_s=600) == 1
    assert sent == [("chunks", book.pk, 1, [(1, 2), (5, 6)])]
    event = ReviewEvent.objects.get(action="ingest.resumed")
    assert event.after["chunks_resent"] == [[1, 2], [5, 6]]
    # The clock restarted: a second sweep right away sends nothing again.
    assert resume_stalled_ingests(stalled_after_s=600) == 0
    assert len(sent) == 1


def test_a_run_that_is_still_moving_is_left_alone(db, sent):
    book = make_book(pages=4)
    _run(book, [(1, 2), (3, 4)], done={1}, minutes_idle=2)
    assert resume_stalled_ingests(stalled_after_s=600) == 0
    assert sent == []


def test_all_chunks_done_but_never_finalised_resends_the_finalising_task(db, sent):
    book = make_book(pages=4)
    _run(book, [(1, 2), (3, 4)], done={1, 3})
    assert resume_stalled_ingests(stalled_after_s=600) == 1
    assert sent == [("finalize", book.pk, 1)]


@pytest.mark.parametrize("status", ["done", "failed"])
def test_finished_books_are_never_resumed(db, sent, status):
    book = make_book(pages=2)
    _run(book, [(1, 2)])
    Textbook.objects.filter(pk=book.pk).update(status=status)
    assert resume_stalled_ingests(stalled_after_s=0) == 0
    assert sent == []


def test_beat_runs_the_sweep_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["resume-stalled-ingests"]
    assert entry == {"task": "workers.maintenance.resume_stalled_ingests", "schedule": 60.0}
    from workers.maintenance import resume_stalled_ingests as task

    assert task.name == entry["task"]
