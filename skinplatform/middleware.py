"""Small cross-cutting middleware."""

from __future__ import annotations

import logging
import time

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError as BrokerError

log = logging.getLogger(__name__)


class ServerTimingMiddleware:
    """Adds ``Server-Timing: app;dur=<ms>`` so latency is measurable without the client's noise.

    Browsers show it in their network panel; the review benchmark reads it.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response


# Exceptions that mean a service we depend on is unreachable, not that our code is wrong.
# Django wraps every driver's connection errors in these two; kombu wraps the broker's.
OUTAGES: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    ((OperationalError, InterfaceError), "database_unavailable", "the database"),
    ((BrokerError,), "broker_unavailable", "the message broker"),
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), "cache_unavailable",
     "the cache"),
)  # fmt: skip
RETRY_AFTER_SECONDS = 30


class OutageMiddleware:
    """A database, broker or cache outage answers 503 (JSON under ``/api/``) instead of a 500.

    The generic fallback for any view: callers learn to retry rather than to report a bug.
    The page is rendered without the request, since the session and the user are in the
    database that may be down.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception) -> HttpResponse | None:
        found = next((o for o in OUTAGES if isinstance(exception, o[0])), None)
        if found is None:
            return None
        _, code, what = found
        log.warning("%s %s: %s unreachable: %s", request.method, request.path, what, exception)
        detail = f"Temporarily unavailable: {what} cannot be reached. Try again shortly."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"code": code, "detail": detail}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"detail": detail}), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
