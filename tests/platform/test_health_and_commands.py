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


def test_healthz_tells_anonymous_callers_only_ok_or_failing(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    body = client.get("/healthz").json()
    assert body == {"status": "unavailable", "database": {"ok": True}, "broker": {"ok": False}}


@pytest.mark.parametrize("roles, staff", [(("curator",), False), (("admin",), False), ((), True)])
def test_healthz_details_are_for_staff(client, make_user, settings, roles, staff):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    user = make_user("ops", *roles)
    user.is_staff = staff
    user.save()
    client.force_login(user)
    body = client.get("/healthz").json()
    assert body["database"]["detail"] in ("postgresql", "sqlite")
    assert "127.0.0.1:1" in body["broker"]["detail"]  # the driver's message, host and port


def test_healthz_details_are_not_for_experts(client, make_user, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.force_login(make_user("exp", "expert"))
    body = client.get("/healthz").json()
    assert "detail" not in body["database"] and "detail" not in body["broker"]


def test_healthz_with_the_database_down_names_no_host_even_to_a_session(client, make_user):
    """Sessions live in the database: with it down the caller is anonymous, not a crash."""
    from unittest import mock

    from django.db import OperationalError, connection

    client.force_login(make_user("cur", "curator"))
    refused = OperationalError('connection to server at "10.9.8.7", port 5432 failed')
    with mock.patch.object(connection, "ensure_connection", side_effect=refused):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == {"ok": False}
    assert "10.9.8.7" not in response.content.decode()


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


def test_create_user_admin_is_staff_and_can_use_the_django_admin(client, db):
    from django.contrib.auth import get_user_model

    call_command("create_user", "root2", "--role", "admin", "--password", "pw-for-tests-1")
    admin = get_user_model().objects.get(username="root2")
    assert admin.is_staff and not admin.is_superuser
    client.force_login(admin)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "/admin/curation/pair/" in index.content.decode()
    assert client.get("/admin/curation/pair/").status_code == 200
    assert client.get("/admin/curation/reviewevent/").status_code == 200
    assert client.get("/admin/axes/accessattempt/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_the_admin_role_sees_every_registered_platform_model(client, make_user):
    """Granted after every migrate, so a model added later needs no hand-written migration."""
    from django.contrib import admin as admin_site

    user = make_user("root5", "admin")
    user.is_staff = True
    user.save()
    client.force_login(user)
    models = [m for m in admin_site.site._registry if m._meta.app_label == "curation"]
    assert len(models) > 5
    for model in models:
        url = f"/admin/curation/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url


def test_the_admin_role_lifts_a_lockout_in_the_django_admin(client, make_user):
    from axes.models import AccessAttempt
    from django.utils import timezone

    attempt = AccessAttempt.objects.create(
        username="locked", ip_address="10.0.0.1", user_agent="", failures_since_start=9,
        attempt_time=timezone.now(), get_data="", post_data="", http_accept="", path_info="",
    )  # fmt: skip
    admin = make_user("root4", "admin")
    admin.is_staff = True
    admin.save()
    client.force_login(admin)
    url = f"/admin/axes/accessattempt/{attempt.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not AccessAttempt.objects.exists()


def test_the_admin_role_cannot_make_itself_superuser(client, db):
    """change_user is withheld: Django's user form would let its holder grant superuser."""
    from django.contrib.auth import get_user_model

    call_command("create_user", "root3", "--role", "admin", "--password", "pw-for-tests-1")
    admin = get_user_model().objects.get(username="root3")
    assert not admin.has_perm("auth.change_user")
    assert admin.has_perm("curation.view_pair") and admin.has_perm("axes.delete_accessattempt")


def test_an_expert_cannot_open_the_django_admin(client, make_user):
    expert = make_user("exp2", "expert")
    client.force_login(expert)
    assert client.get("/admin/").status_code == 302  # to the admin's sign-in
    assert client.get("/admin/curation/pair/").status_code == 302
    expert.is_staff = True  # staff without the role still sees no model
    expert.save()
    assert client.get("/admin/curation/pair/").status_code == 403
