"""Reads about the modality classifier: its versions, and each one's accuracy against the
experts' decisions over time."""

from __future__ import annotations

from django.db.models import Count, Q
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate

from curation.models import ModalityClassifier, Pair

LABELLED = (Pair.Status.ACCEPTED, Pair.Status.EDITED)


def versions(limit: int = 20) -> list[ModalityClassifier]:
    """The latest classifier versions, newest first, without their parameters."""
    return list(ModalityClassifier.objects.defer("params").order_by("-created_at", "-id")[:limit])


def accuracy_over_time(days: int = 60) -> list[dict]:
    """Per model version and day of decision: pairs whose suggestion that model made, how many
    the expert left at the suggested modality, and the share.

    One grouped query on the decided pairs; a pair proposed before versions were recorded
    counts under the version "" ("before tracking")."""
    rows = (
        Pair.objects.filter(status__in=LABELLED, reviewed_at__isnull=False)
        .annotate(model=KT("proposed__modality_model"), day=TruncDate("reviewed_at"))
        .values("model", "day")
        .annotate(
            decided=Count("id"),
            agreed=Count("id", filter=Q(modality=KT("proposed__modality"))),
        )
        .order_by("-day", "model")[: days * 4]
    )
    out = []
    for r in rows:
        out.append(
            {
                "model": r["model"] or "",
                "day": r["day"],
                "decided": r["decided"],
                "agreed": r["agreed"],
                "accuracy": round(r["agreed"] / r["decided"], 3) if r["decided"] else None,
            }
        )
    return out
