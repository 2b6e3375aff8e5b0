"""One door for reading the environment, so a missing production value fails at start-up."""

from __future__ import annotations

import os
import re


class ConfigError(RuntimeError):
    """Raised when the environment would start the platform in an unsafe or broken state."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ConfigError(f"{name} must be set")
        return default if default is not None else ""
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc


# The value .env.example ships with: a deployment that kept it signs sessions with a public key.
PLACEHOLDER_SECRET_KEYS = frozenset({"change-me-to-a-long-random-string"})
MIN_SECRET_KEY_LENGTH = 50  # what Django's own deploy check (security.W009) asks for


def check_secret_key(value: str, *, debug: bool) -> None:
    """Refuse the published placeholder always, and guessable keys outside debug mode.

    Django's ``check --deploy`` only warns about weak keys, and only when someone runs it; a
    key that signs sessions and password-reset links must be refused before anything starts.
    """
    hint = "generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if value in PLACEHOLDER_SECRET_KEYS:
        raise ConfigError(f"SECRET_KEY is the placeholder from .env.example; {hint}")
    if debug:
        return
    if len(value) < MIN_SECRET_KEY_LENGTH or len(set(value)) < 5:
        raise ConfigError(
            f"SECRET_KEY is too weak ({len(value)} characters, {len(set(value))} distinct; "
            f"at least {MIN_SECRET_KEY_LENGTH} and 5 are needed); {hint}"
        )
    if value.startswith("django-insecure-"):
        raise ConfigError(f"SECRET_KEY is one of Django's 'django-insecure-' keys; {hint}")


def cache_config(url: str) -> dict:
    """``CACHES['default']`` from ``CACHE_URL``: empty means per-process memory (the demo).

    Six lines do not justify a dependency (django-environ) for one URL scheme.
    """
    if not url or url == "locmem://":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ConfigError(f"CACHE_URL={url!r} must be redis://host:6379/N, rediss://... or locmem://")


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate (``100/minute``), checked now rather than on the first request."""
    value = env_str(name, default).strip()
    if not _RATE.match(value):
        raise ConfigError(f"{name}={value!r} is not a rate like 100/second or 10/minute")
    return value
