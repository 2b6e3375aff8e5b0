"""Editing the guidelines: curators only, checked against the version the editor saw."""

from __future__ import annotations

from django.db import transaction

from curation import limits
from curation.events import EventAction
from curation.guidelines import DEFAULTS
from curation.models import Guideline
from curation.services.audit import record_event
from curation.services.errors import ServiceError
from curation.services.roles import require_role
from skinplatform.accounts.roles import STAFF


def update_guideline(actor, kind: str, code: str, text: str, *, version: int) -> Guideline:
    """Replace one definition; ``version`` is what the editor loaded (0 for the default)."""
    require_role(actor, STAFF, "edit the guidelines")
    if kind not in DEFAULTS or code not in {str(c) for c in DEFAULTS[kind]}:
        raise ServiceError("unknown", f"There is no {kind!r} entry called {code!r}.", status=404)
    text = (text or "").strip()
    if not text:
        raise ServiceError("invalid", "A guideline cannot be empty; edit it instead.")
    limits.check_text("text", text, limits.GUIDELINE, "guideline")
    with transaction.atomic():
        row, _ = Guideline.objects.select_for_update().get_or_create(
            kind=kind, code=code, defaults={"text": DEFAULTS[kind][code], "version": 0}
        )
        if row.version != version:
            who = row.updated_by.get_username() if row.updated_by else "someone"
            raise ServiceError(
                "conflict",
                f"{who} changed this guideline while you were editing it; reload to see "
                "their text before you save yours.",
                status=409,
            )
        before = {"text": row.text, "version": row.version}
        if row.text == text and row.version:
            return row
        row.text = text
        row.version += 1
        row.updated_by = actor
        row.save()
        record_event(
            actor, row, EventAction.GUIDELINE_UPDATED, before=before,
            after={"text": row.text, "version": row.version},
        )  # fmt: skip
    return row
