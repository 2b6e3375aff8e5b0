"""Services send work by task name: every name they use is a registered task, routed to the
queue its worker reads, and under eager mode the task runs in-process."""

import pytest
from celery import current_app

from curation.services import dispatch


@pytest.fixture
def eager():
    """Set task_always_eager for one test (Celery's settings object cannot be monkeypatched)."""
    previous = current_app.conf.task_always_eager

    def set_to(value: bool) -> None:
        current_app.conf.task_always_eager = value

    yield set_to
    current_app.conf.task_always_eager = previous


NAMES = {
    dispatch.INGEST_CHUNK: "ingest",
    dispatch.FINALIZE_INGEST: "ingest",
    dispatch.RENDER_CROPS: "ingest",
    dispatch.DRAFT_PAIR: "llm",
    dispatch.BUILD_RELEASE: "release",
}


@pytest.mark.parametrize(("name", "queue"), sorted(NAMES.items()))
def test_each_name_is_a_task_routed_to_its_queue(name, queue):
    current_app.loader.import_default_modules()
    assert name in current_app.tasks
    route = current_app.amqp.router.route({}, name)
    assert route["queue"].name == queue


def test_send_publishes_by_name_without_importing_the_task(monkeypatch, eager):
    published = []
    eager(False)
    monkeypatch.setattr(current_app, "send_task", lambda name, args: published.append((name, args)))
    dispatch.send(dispatch.DRAFT_PAIR, 7)
    assert published == [(dispatch.DRAFT_PAIR, (7,))]


def test_eager_mode_runs_the_task_in_process(monkeypatch, eager):
    ran = []

    @current_app.task(name="tests.dispatch.probe")
    def probe(x):
        ran.append(x)

    eager(True)
    monkeypatch.setattr(
        current_app, "send_task", lambda *a, **k: pytest.fail("eager mode must not publish")
    )
    dispatch.send("tests.dispatch.probe", 3)
    assert ran == [3]


def test_sends_wait_for_the_commit(transactional_db, monkeypatch):
    from django.db import transaction

    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args: sent.append((name, args)))
    with transaction.atomic():
        dispatch.enqueue_render(4, [3, 1, 3], False)
        assert sent == []
    assert sent == [(dispatch.RENDER_CROPS, (4, [1, 3], False))]
