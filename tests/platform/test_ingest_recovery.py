"""Ingest runs whose messages were lost are resumed from what the database knows."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import IngestChunk, ReviewEvent, Textbook
from curation.services import dispatch
from curation.services import ingest_recovery as recovery
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


def test_beat_runs_the_sweep_every_sweep_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["resume-stalled-ingests"]
    assert entry == {
        "task": "workers.maintenance.resume_stalled_ingests",
        "schedule": float(settings.INGEST_SWEEP_SECONDS),
    }
    # A killed worker's chunk goes stale, then waits at most one sweep: about a minute.
    assert settings.INGEST_HEARTBEAT_STALE_SECONDS + settings.INGEST_SWEEP_SECONDS <= 60
    from workers.maintenance import resume_stalled_ingests as task

    assert task.name == entry["task"]


# --- heartbeats: a killed worker's chunk is re-sent within a minute, a live one never ---------


def _beat(book, first, seconds_ago):
    at = timezone.now() - timedelta(seconds=seconds_ago)
    IngestChunk.objects.filter(textbook=book, first_page=first).update(heartbeat_at=at)


def test_chunk_whose_worker_stopped_reporting_is_resent_while_the_run_moves(db, sent):
    book = make_book(pages=6)
    _run(book, [(1, 2), (3, 4), (5, 6)], done={1}, minutes_idle=0)  # the run is moving
    _beat(book, 3, seconds_ago=60)  # its worker died a minute ago
    _beat(book, 5, seconds_ago=5)  # this one is alive
    assert resume_stalled_ingests() == 1
    assert sent == [("chunks", book.pk, 1, [(3, 4)])]
    event = ReviewEvent.objects.get(action="ingest.resumed")
    assert event.after["reason"] == "worker_lost"
    resent = IngestChunk.objects.get(textbook=book, first_page=3)
    assert resent.heartbeat_at is None  # sent again, held by no one yet
    assert resume_stalled_ingests() == 0 and len(sent) == 1


def test_chunk_with_a_fresh_heartbeat_is_never_resent(db, sent, settings):
    """Even a run idle for an hour by its rows: the heartbeat says its worker is at work."""
    book = make_book(pages=2)
    _run(book, [(1, 2)], minutes_idle=60)
    _beat(book, 1, seconds_ago=settings.INGEST_HEARTBEAT_STALE_SECONDS - 10)
    assert resume_stalled_ingests() == 0
    assert sent == []


def test_done_chunks_are_never_resent(db, sent):
    book = make_book(pages=4)
    _run(book, [(1, 2), (3, 4)], done={1}, minutes_idle=0)
    _beat(book, 1, seconds_ago=600)  # a stale beat left on a done chunk means nothing
    assert resume_stalled_ingests() == 0
    assert sent == []


def test_finalising_task_whose_worker_died_is_resent(db, sent, settings):
    book = make_book(pages=4)
    _run(book, [(1, 2), (3, 4)], done={1, 3}, minutes_idle=0)
    stale = settings.INGEST_HEARTBEAT_STALE_SECONDS + 5
    Textbook.objects.filter(pk=book.pk).update(
        finalize_heartbeat_at=timezone.now() - timedelta(seconds=stale)
    )
    assert resume_stalled_ingests() == 1
    assert sent == [("finalize", book.pk, 1)]
    book.refresh_from_db()
    assert book.finalize_heartbeat_at is None
    assert resume_stalled_ingests() == 0


def test_running_finalising_task_is_left_alone(db, sent):
    book = make_book(pages=2)
    _run(book, [(1, 2)], done={1}, minutes_idle=60)
    Textbook.objects.filter(pk=book.pk).update(finalize_heartbeat_at=timezone.now())
    assert resume_stalled_ingests() == 0
    assert sent == []


def test_claim_skips_done_chunks_and_chunks_another_copy_runs(db, settings):
    book = make_book(pages=6)
    _run(book, [(1, 2), (3, 4), (5, 6)], done={1}, minutes_idle=0)
    assert recovery.claim_chunk(book.pk, 1, 1) is None  # done
    chunk_id = recovery.claim_chunk(book.pk, 1, 3)
    assert chunk_id == IngestChunk.objects.get(textbook=book, first_page=3).pk
    assert IngestChunk.objects.get(pk=chunk_id).heartbeat_at is not None
    assert recovery.claim_chunk(book.pk, 1, 3) is None  # a second copy while the first lives
    _beat(book, 3, seconds_ago=settings.INGEST_HEARTBEAT_STALE_SECONDS + 1)
    assert recovery.claim_chunk(book.pk, 1, 3) == chunk_id  # its worker died: take it over
    assert recovery.claim_chunk(book.pk, 2, 5) is None  # a superseded run
    assert recovery.claim_finalize(book.pk, 1)
    assert not recovery.claim_finalize(book.pk, 1)


def test_second_copy_of_a_running_chunk_does_no_work(db, monkeypatch):
    from workers.ingest import ingest_chunk

    book = make_book(pages=2)
    _run(book, [(1, 2)], minutes_idle=0)
    _beat(book, 1, seconds_ago=1)

    def must_not_run(*args, **kwargs):
        raise AssertionError("extracted a chunk another live copy is running")

    monkeypatch.setattr("curation.extract.extract_chunk", must_not_run)
    ingest_chunk(book.pk, 1, 1, 2)
    book.refresh_from_db()
    assert book.status == Textbook.Status.PROCESSING and not book.error


def test_heartbeat_thread_reports_while_the_work_runs(transactional_db, settings):
    book = make_book(pages=2)
    _run(book, [(1, 2)], minutes_idle=0)
    chunk = IngestChunk.objects.get(textbook=book)
    settings.INGEST_HEARTBEAT_SECONDS = 0.05
    with recovery.heartbeat(recovery.touch_chunk, chunk.pk):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk.refresh_from_db()
            if chunk.heartbeat_at is not None:
                break
            time.sleep(0.05)
    assert chunk.heartbeat_at is not None
    after = chunk.heartbeat_at
    time.sleep(0.3)  # stopped with the block: no report after it
    chunk.refresh_from_db()
    assert chunk.heartbeat_at == after


def test_run_whose_messages_never_left_is_resent_by_the_next_sweep(db, sent):
    book = make_book(pages=4)
    _run(book, [(1, 2), (3, 4)], minutes_idle=0)
    assert resume_stalled_ingests() == 0  # just queued: nothing to do yet
    recovery.mark_unsent(book.pk, 1)
    assert ReviewEvent.objects.filter(target_id=book.pk, action="ingest.unsent").exists()
    assert resume_stalled_ingests() == 1
    assert sent == [("chunks", book.pk, 1, [(1, 2), (3, 4)])]
