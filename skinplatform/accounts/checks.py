"""Deployment checks Django does not make itself (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches, Tags.security, deploy=True)
def shared_cache_check(app_configs, **kwargs) -> list[Warning]:
    """API throttles count in the cache: per-process counts multiply the limit by the workers."""
    if settings.CACHES["default"]["BACKEND"] not in PER_PROCESS_CACHES:
        return []
    return [
        Warning(
            "The default cache is per process, so each web worker keeps its own API throttle.",
            hint="Set CACHE_URL=redis://host:6379/N (docker-compose.yml does).",
            id="accounts.W001",
        )
    ]
