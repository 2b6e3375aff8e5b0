import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.models import Textbook
from curation.samplebook import bad_pdfs


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"]


def test_healthz_is_503_when_the_broker_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert response.json()["database"]["ok"] is True


def test_create_user_with_roles_and_token(db, capsys):
    call_command("create_user", "gpu1", "--role", "ml_worker", "--token")
    token = capsys.readouterr().out.strip()
    assert len(token) == 40
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="gpu1")
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["ml_worker"]
    with pytest.raises(CommandError):
        call_command("create_user", "nobody")


def test_import_textbook_command(db, sample_book, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("curation.services.dispatch.enqueue_ingest", lambda *a: None)
    path, _ = sample_book
    call_command("import_textbook", str(path))
    assert "imported as book" in capsys.readouterr().out
    call_command("import_textbook", str(path))
    assert "already imported" in capsys.readouterr().out
    bad = tmp_path / "bad.pdf"
    bad_pdfs.write_not_pdf(bad)
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("import_textbook", str(bad))
    assert "refused (not_pdf)" in capsys.readouterr().err
    assert Textbook.objects.count() == 1


def test_every_response_carries_server_timing(client, db):
    response = client.get("/healthz")
    assert response["Server-Timing"].startswith("app;dur=")
