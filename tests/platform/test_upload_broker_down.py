"""An upload while the broker is down is stored and queued (202), never a 500 with half a book.

Why 202 and not 503: the file has passed validation and is stored content-addressed, and the
database already knows the run's chunks, which is all the ingest sweep needs to send them once
the broker is back. Refusing would make the curator upload a 500 MB file again, and undoing a
committed book after the fact is a second write that can fail too.
"""

import os
import socket
import subprocess
import sys

import pytest
from kombu import pools

from curation.models import IngestChunk, ReviewEvent, Textbook
from curation.services import dispatch
from curation.services.ingest_recovery import resume_stalled_ingests
from curation.services.textbooks import BROKER_DOWN_MESSAGE
from tests.conftest import ROOT, database_url_for_subprocess


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/5"  # nothing listens there any more


def _reset_connections() -> None:
    from skinplatform.celery import app

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(transactional_db, monkeypatch):
    """Publishing goes to a closed port on 127.0.0.1 (Celery's write URL wins over the read one).

    transactional_db: the send happens on commit, which a test wrapped in a transaction never
    reaches.
    """
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", _closed_port_url())
    _reset_connections()
    yield
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    _reset_connections()


def _assert_queued_for_the_sweep(book: Textbook, monkeypatch) -> None:
    assert book.status == Textbook.Status.QUEUED
    chunks = IngestChunk.objects.filter(textbook=book, run=book.ingest_run)
    assert chunks.count() == book.chunks_total > 0
    assert not chunks.exclude(status=IngestChunk.Status.PENDING).exists()
    assert ReviewEvent.objects.filter(target_id=book.pk, action="ingest.unsent").exists()
    # The broker is back: the very next sweep sends the whole run.
    sent = []
    monkeypatch.setattr(dispatch, "enqueue_ingest", lambda *args: sent.append(args))
    assert resume_stalled_ingests() == 1
    assert sent == [(book.pk, book.ingest_run, list(chunks.values_list("first_page", "last_page")))]


def test_api_upload_with_the_broker_down_is_queued_for_the_sweep(
    broker_down, api_client_for, sample_book, monkeypatch
):
    path, _ = sample_book
    client = api_client_for("curator")
    with open(path, "rb") as fh:
        response = client.post("/api/textbooks/", {"file": fh}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["detail"] == BROKER_DOWN_MESSAGE
    assert body["status"] == "queued"
    _assert_queued_for_the_sweep(Textbook.objects.get(pk=body["id"]), monkeypatch)


def test_upload_page_with_the_broker_down_says_so(
    broker_down, client, make_user, sample_book, monkeypatch
):
    client.force_login(make_user("cur", "curator"))
    path, _ = sample_book
    with open(path, "rb") as fh:
        response = client.post("/books/", {"file": fh}, follow=True)
    assert response.status_code == 200
    book = Textbook.objects.get()
    assert response.redirect_chain[-1][0].endswith(f"/books/{book.pk}/")
    assert BROKER_DOWN_MESSAGE in response.content.decode()
    _assert_queued_for_the_sweep(book, monkeypatch)


def test_import_command_with_the_broker_down(transactional_db, sample_book, settings, monkeypatch):
    """The real command in its own process, its broker URL a closed port."""
    path, _ = sample_book
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "VAR_DIR": str(settings.VAR_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": _closed_port_url(),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "import_textbook", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    book = Textbook.objects.get()
    assert f"imported as book {book.pk}" in done.stdout
    assert BROKER_DOWN_MESSAGE in done.stdout
    assert "Traceback" not in done.stderr
    _assert_queued_for_the_sweep(book, monkeypatch)
