"""A real ``celery worker`` process on the configured broker (Redis in CI) and database."""

import time

import pytest

from curation.models import Figure, IngestChunk, Pair, ReviewEvent, Textbook
from curation.services.ingest_recovery import resume_stalled_ingests
from tests.conftest import purge_broker, wait_for

pytestmark = pytest.mark.slow


def _upload(client, path):
    with open(path, "rb") as fh:
        response = client.post("/api/textbooks/", {"file": fh}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _gold_keys(gold):
    return sorted((f.label, f.page) for f in gold.figures)


def _status(book_id):
    return Textbook.objects.values_list("status", flat=True).get(pk=book_id)


def test_uploaded_book_is_ingested_by_a_real_worker(
    celery_worker_factory, api_client_for, sample_book, settings
):
    settings.INGEST_CHUNK_PAGES = 6
    path, gold = sample_book
    celery_worker_factory()
    client = api_client_for("curator")
    book_id = _upload(client, path)
    wait_for(lambda: _status(book_id) in ("done", "failed"), 120, message="ingest")
    book = Textbook.objects.get(pk=book_id)
    assert book.status == "done", book.error
    keys = sorted(Figure.objects.filter(textbook=book).values_list("label", "page__number"))
    assert keys == _gold_keys(gold)
    progress = client.get(f"/api/textbooks/{book_id}/").json()
    assert progress["progress"] == 1.0 and progress["figures_found"] == len(gold.figures)


def _snapshot(book_id) -> dict:
    """What an ingest produced, without row ids: figures, their panels and the proposed pairs."""
    figures = sorted(
        (f.label, f.page.number, f.caption, tuple(round(v, 2) for v in f.bbox))
        for f in Figure.objects.filter(textbook_id=book_id).select_related("page")
    )
    pairs = sorted(
        (
            p.panel.figure.label,
            p.panel.index,
            p.panel.letter,
            tuple(round(v, 2) for v in p.panel.bbox),
            p.text,
            p.modality,
            p.diagnosis,
            p.age,
            p.sex,
            tuple(p.flags),
        )
        for p in Pair.objects.filter(textbook_id=book_id).select_related("panel__figure")
    )
    return {"figures": figures, "pairs": pairs}


def _claimed_chunk(book_id):
    """A chunk a worker is running right now: claimed (it has a heartbeat) and not done."""
    return (
        IngestChunk.objects.filter(
            textbook_id=book_id, status="pending", heartbeat_at__isnull=False
        )
        .values_list("pk", flat=True)
        .first()
    )


def test_worker_killed_mid_chunk_is_recovered_within_two_minutes(
    celery_worker_factory, api_client_for, sample_book, settings
):
    """SIGKILL while a chunk runs. Redis would hand its message back only after the visibility
    timeout (an hour) and the filesystem broker never: the chunk's heartbeat goes stale and the
    sweep, at beat's interval with the production thresholds, re-sends it."""
    settings.INGEST_CHUNK_PAGES = 4
    path, gold = sample_book
    first = celery_worker_factory()
    book_id = _upload(api_client_for("curator"), path)
    victim = wait_for(
        lambda: (
            Textbook.objects.filter(pk=book_id, chunks_done__gte=1).exists()
            and _claimed_chunk(book_id)
        ),
        90,
        interval=0.02,
        message="a chunk in flight after the first one",
    )
    first.kill()
    killed_at = time.monotonic()
    chunk = IngestChunk.objects.get(pk=victim)
    assert chunk.status == "pending", "the worker finished the chunk before it could be killed"
    killed_done = Textbook.objects.get(pk=book_id).chunks_done

    celery_worker_factory()

    def recovered() -> bool:
        resume_stalled_ingests()  # what beat runs every INGEST_SWEEP_SECONDS
        return _status(book_id) in ("done", "failed")

    budget = 120 - (time.monotonic() - killed_at)
    wait_for(recovered, budget, interval=settings.INGEST_SWEEP_SECONDS, message="recovery")
    recovery_s = time.monotonic() - killed_at
    print(f"book complete {recovery_s:.1f} s after the worker was killed")
    book = Textbook.objects.get(pk=book_id)
    assert book.status == "done", book.error
    assert killed_done < book.chunks_total == book.chunks_done
    assert book.pages_done == book.page_count
    resumed = ReviewEvent.objects.get(target_id=book_id, action="ingest.resumed")
    assert resumed.after["reason"] == "worker_lost"
    assert resumed.after["chunks_resent"] == [[chunk.first_page, chunk.last_page]]

    recovered_run = _snapshot(book_id)
    keys = sorted((label, page) for label, page, _, _ in recovered_run["figures"])
    assert keys == _gold_keys(gold)
    assert len(recovered_run["pairs"]) == sum(len(f.panels) for f in gold.figures)
    # The same file ingested again from scratch, in this process, gives exactly the same rows.
    Textbook.objects.filter(pk=book_id).delete()
    from skinplatform.celery import app

    app.conf.task_always_eager = True
    try:
        clean_id = _upload(api_client_for("curator", username="curator2"), path)
    finally:
        app.conf.task_always_eager = False
    assert _status(clean_id) == "done"
    assert _snapshot(clean_id) == recovered_run


def test_lost_ingest_messages_are_resent_by_the_sweep(
    celery_worker_factory, api_client_for, sample_book, settings
):
    """Every chunk message vanishes before a worker sees it; the sweep alone finishes the book."""
    settings.INGEST_CHUNK_PAGES = 10
    path, gold = sample_book
    book_id = _upload(api_client_for("curator"), path)  # queued, no worker running yet
    purge_broker()  # the messages are lost
    celery_worker_factory()
    assert _status(book_id) == "queued"
    assert resume_stalled_ingests(stalled_after_s=0) == 1
    wait_for(lambda: _status(book_id) in ("done", "failed"), 120, message="resumed ingest")
    book = Textbook.objects.get(pk=book_id)
    assert book.status == "done", book.error
    assert book.chunks_done == book.chunks_total
    keys = sorted(Figure.objects.filter(textbook=book).values_list("label", "page__number"))
    assert keys == _gold_keys(gold)


def test_ingest_tasks_are_acknowledged_only_after_they_ran():
    """The kill test above may finish through the sweep when Redis loses the message, so it
    cannot tell whether redelivery works; this pins the options redelivery rests on."""
    from django.conf import settings

    from workers.ingest import finalize_ingest, ingest_chunk

    for task in (ingest_chunk, finalize_ingest):
        assert task.acks_late and task.reject_on_worker_lost, task.name
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
