"""Brute-force limits: sign-in lockout (django-axes) and API throttles (DRF).

Both name the client the same way (``client_ip``), so one ``TRUSTED_PROXY_COUNT`` decides how
far ``X-Forwarded-For`` is believed for both.
"""

from __future__ import annotations

import ipaddress
import math

from axes.helpers import get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle, UserRateThrottle


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as DRF's throttles see it (``NUM_PROXIES`` from the settings).

    A forwarded value that is no address (a proxy count set too high lets the client write
    it) falls back to the peer's address rather than failing the sign-in.
    """
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(ident))
    except ValueError:
        return request.META.get("REMOTE_ADDR") or None


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    """The 429 page axes shows a locked-out sign-in: what happened and when to try again."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds())
    # Every try during a lockout restarts the cool-off, so it ends one cool-off after this one.
    started = getattr(request, "axes_attempt_time", None) or timezone.now()
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "retry_at": started + cool_off,
        "minutes": max(1, math.ceil(seconds / 60)),
    }
    response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(seconds)
    return response


class _LiveRate:
    """Read the rate when the throttle is made, not at import (DRF caches it on the class),
    so a changed setting takes effect; tests rely on it."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRate, UserRateThrottle):
    """Per-user rate for authenticated API use (per address for anonymous calls)."""


class BadTokenThrottle(_LiveRate, SimpleRateThrottle):
    """Counts invalid API tokens per client address; only failures are counted."""

    scope = "bad_token"

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def exhausted(self, request) -> bool:
        """DRF's ``allow_request`` without recording this request as one of the failures."""
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def record_failure(self) -> None:
        self.throttle_success()  # DRF's name for "append now to the history and store it"


class ThrottledTokenAuthentication(TokenAuthentication):
    """Token authentication that answers 429 to an address that keeps sending bad tokens.

    DRF's throttles run after authentication, so a bad token (401) never reaches them; this
    counts the failures itself. While an address is over the limit every token from it waits,
    valid ones included: answering a right guess differently would keep the guessing useful.
    """

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        throttle = BadTokenThrottle()
        if throttle.exhausted(request):
            raise exceptions.Throttled(wait=throttle.wait())
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure()
            raise
