"""Reads for the review page: one pair with everything an expert needs beside it."""

from __future__ import annotations

from dataclasses import dataclass

from curation.models import Figure, Pair, Panel, Review, ReviewEvent


@dataclass
class ReviewContext:
    pair: Pair
    panel: Panel
    figure: Figure
    panels: list[Panel]
    events: list[ReviewEvent]
    previous_id: int | None


def review_context(pair_id: int, user) -> ReviewContext | None:
    pair = (
        Pair.objects.select_related("textbook", "panel", "panel__figure", "panel__figure__page")
        .filter(pk=pair_id)
        .first()
    )
    if pair is None:
        return None
    figure = pair.panel.figure
    panels = list(figure.panels.select_related("pair").order_by("index"))
    events = list(
        ReviewEvent.objects.filter(target_type="pair", target_id=pair.pk)
        .select_related("actor")
        .order_by("-created_at", "-id")[:50]
    )
    previous = (
        Review.objects.filter(expert=user, item_type="pair")
        .exclude(item_id=pair.pk)
        .order_by("-created_at")
        .values_list("item_id", flat=True)
        .first()
    )
    return ReviewContext(pair, pair.panel, figure, panels, events, previous)
