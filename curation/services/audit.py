"""The only writer of ReviewEvent rows."""

from __future__ import annotations

from typing import Any

from django.db import models

from curation.events import EventAction
from curation.models import ReviewEvent


def record_event(
    actor,
    target: models.Model,
    action: EventAction | str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> ReviewEvent:
    """Append one audit row; ``actor`` None means the machine (a worker) acted.

    ``action`` must be one of ``EventAction`` (a plain string with its value is accepted)."""
    if action not in EventAction.values:
        raise ValueError(f"{action!r} is not an EventAction: declare it in curation/events.py")
    return ReviewEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        target_type=target._meta.model_name,
        target_id=target.pk,
        action=EventAction(action).value,
        before=before,
        after=after,
        note=note,
    )
