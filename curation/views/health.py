"""Liveness and dependency check for load balancers and the demo script."""

from __future__ import annotations

from django.conf import settings
from django.db import Error as DbError
from django.db import connection
from django.http import JsonResponse

from skinplatform.accounts.roles import STAFF, has_any_role
from skinplatform.celery import app as celery_app


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def _broker() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport_cls if isinstance(conn.transport_cls, str) else "ok"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def _may_see_details(request) -> bool:
    """Staff, curators and admins; the driver's message names hosts and ports."""
    try:
        user = request.user
        return user.is_authenticated and (user.is_staff or has_any_role(user, STAFF))
    except DbError:  # sessions live in the database: with it down nobody is known
        return False


def public_healthz(request):
    """Unauthenticated on purpose (its name says so): anonymous callers learn only ok/failing."""
    db_ok, db_detail = _database()
    broker_ok, broker_detail = _broker()
    ok = db_ok and broker_ok
    database, broker = {"ok": db_ok}, {"ok": broker_ok}
    if _may_see_details(request):
        database["detail"], broker["detail"] = db_detail, broker_detail
    body = {"status": "ok" if ok else "unavailable", "database": database, "broker": broker}
    return JsonResponse(body, status=200 if ok else 503)
