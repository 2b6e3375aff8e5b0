"""How long each free-text field may be, declared once for models, services, serializers, forms.

The sizes are what real textbooks need, with room to spare: the longest figure captions of a
dermatology atlas run to a few thousand characters and an expert's answer is shorter, so
20,000 characters never cuts real text, while a pasted 9 MiB blob (a 9 MB review page for
every expert who opens it, and a 9 MB row in every release) is refused. Services check every
write against these (so each path is covered); serializers and forms check them too, so the
user gets the message on the field. Text extracted from a PDF is cut at the limit instead
(``clip``), with a note, rather than failing the book.
"""

from __future__ import annotations

import json
from typing import Any

from curation.services.errors import ServiceError

# Characters.
CAPTION = 20_000  # Pair.text, Figure.caption
SUBCAPTION = CAPTION  # Panel.subcaption: a pair's text is its panel's sub-caption
ANSWER = 20_000  # VQAItem.answer
QUESTION = 2_000  # VQAItem.question
QUESTION_TYPE = 40  # VQAItem.question_type
DIAGNOSIS = 300  # Pair.diagnosis
REJECT_NOTE = 2_000  # Pair.reject_note, VQAItem.reject_note (why an item was rejected)
TITLE = 500  # Textbook.title
EDITION = 100  # Textbook.edition
AUTHORS = 1_000  # Textbook.authors
LICENCE_NOTE = 5_000  # Textbook.licence_note
RELEASE_DESCRIPTION = 5_000  # Release.description (the release notes)
TRAINING_ERROR = 20_000  # TrainingRun.error: a message and a traceback's tail
ARTEFACTS_URI = 500  # TrainingRun.artefacts_uri
WORKER_NAME = 200  # the name a worker claims a run under
GUIDELINE = 5_000  # Guideline.text: a definition with its edge cases, not a manual

# Bytes of compact JSON.
TRAINING_CONFIG_BYTES = 64 * 1024  # TrainingRun.config: a stage's overrides, not data
TRAINING_METRICS_BYTES = 1024 * 1024  # TrainingRun.metrics, merged: scores per label and split


class TooLong(ServiceError):
    """A text or JSON value over its limit; ``field`` names it for the form or API client."""

    def __init__(self, field: str, message: str, *, limit: int) -> None:
        super().__init__("too_long", message, extra={"field": field, "limit": limit})


def check_text(field: str, value: str, limit: int, label: str | None = None) -> str:
    """``value`` unchanged when it fits, else ``TooLong`` saying how long it is and may be."""
    if len(value) > limit:
        raise TooLong(
            field,
            f"The {label or field} is {len(value):,} characters long; at most {limit:,} "
            "are allowed. Shorten it and try again.",
            limit=limit,
        )
    return value


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def check_json(field: str, value: Any, limit: int, label: str | None = None) -> Any:
    """``value`` unchanged when its compact JSON fits in ``limit`` bytes, else ``TooLong``."""
    size = json_size(value)
    if size > limit:
        raise TooLong(
            field,
            f"The {label or field} is {size:,} bytes as JSON; at most {limit:,} are allowed.",
            limit=limit,
        )
    return value


def clip(value: str, limit: int) -> tuple[str, bool]:
    """Extracted text cut to ``limit`` characters, and whether it was cut."""
    return (value[:limit], True) if len(value) > limit else (value, False)
