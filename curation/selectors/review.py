"""Reads for the review page: one pair with everything an expert needs beside it.

Blind review lives here, once. With several reviews per item each expert decides without
seeing the others: while a pair waits for its independent reviews, an expert who has not
given theirs sees only the machine's events and their own (``visible_events``). Every surface
that shows a pair's history (the page, the history API, the conflict payload) reads it
through that function. The pair row itself carries no reviewer's values until the round ends
(``services.review.review_pair`` keeps blind decisions in ``Review`` rows only).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from curation.models import Figure, Pair, Panel, ProjectSettings, Review, ReviewEvent
from curation.selectors.panels import REVERTED
from skinplatform.accounts.roles import STAFF, roles_of

ITEM = "pair"


def round_reviews(pair_id) -> QuerySet[Review]:
    """Independent (not adjudicating) reviews of the pair since it was last reverted.

    A revert sends the pair back to be reviewed again: the reviews before it belong to an
    earlier round. One query, the last revert riding along as a subquery; ``pair_id`` may be
    an ``OuterRef`` so the round can itself be a subquery of a read of pairs.
    """
    last_revert = (
        ReviewEvent.objects.filter(target_type=ITEM, target_id=OuterRef("item_id"), action=REVERTED)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    return (
        Review.objects.filter(item_type=ITEM, item_id=pair_id, adjudication=False)
        .annotate(round_start=Subquery(last_revert))
        .filter(Q(round_start__isnull=True) | Q(created_at__gt=F("round_start")))
    )


def with_blind_state(pairs: QuerySet[Pair], user) -> QuerySet[Pair]:
    """Pairs carrying what ``decisions_hidden`` needs for ``user``, so the read that loads a
    pair for a page pays no extra round trip for blind review."""
    reviews = round_reviews(OuterRef("pk"))
    return pairs.annotate(
        blind_reviews_needed=Subquery(
            ProjectSettings.objects.filter(pk=1).values("reviews_per_item")[:1]
        ),
        blind_round_started=Exists(reviews),
        blind_reviewed_by_user=Exists(reviews.filter(expert_id=user.pk)),
    )


def decisions_hidden(pair: Pair, user) -> bool:
    """Whether ``user`` must not see other reviewers' decisions on ``pair`` yet.

    True while the pair awaits independent reviews (it is ``proposed`` and either the
    project wants several reviews per item or this round already has one, say from before
    the setting was lowered) and ``user``, not a curator or admin, has not given theirs.
    Once they have decided, or the round is over (final or disputed), they see everything.
    A pair read through ``with_blind_state`` is answered without a query.
    """
    if pair.status != Pair.Status.PROPOSED or roles_of(user) & STAFF:
        return False
    if not hasattr(pair, "blind_reviewed_by_user"):
        pair = with_blind_state(Pair.objects.filter(pk=pair.pk), user).only("pk").get()
    if pair.blind_reviewed_by_user:
        return False
    return pair.blind_round_started or (pair.blind_reviews_needed or 1) > 1


def visible_events(pair: Pair, user, *, hidden: bool | None = None) -> QuerySet[ReviewEvent]:
    """The events of ``pair`` that ``user`` may see: all, or while blind the machine's and theirs.

    ``hidden`` is ``decisions_hidden(pair, user)`` for a caller that already asked.
    """
    if hidden is None:
        hidden = decisions_hidden(pair, user)
    events = ReviewEvent.objects.filter(target_type=ITEM, target_id=pair.pk)
    if hidden:
        events = events.filter(Q(actor__isnull=True) | Q(actor_id=user.pk))
    return events


def pair_history(pair: Pair, user) -> list[ReviewEvent]:
    """The pair's audit trail, oldest first, as ``user`` may see it."""
    return list(visible_events(pair, user).select_related("actor").order_by("created_at", "id"))


@dataclass
class ReviewContext:
    pair: Pair
    panel: Panel
    figure: Figure
    panels: list[Panel]
    events: list[ReviewEvent]
    previous_id: int | None
    blind: bool = False


def review_context(pair_id: int, user) -> ReviewContext | None:
    pairs = Pair.objects.select_related(
        "textbook", "panel", "panel__figure", "panel__figure__page"
    ).filter(pk=pair_id)
    pair = with_blind_state(pairs, user).first()
    if pair is None:
        return None
    figure = pair.panel.figure
    panels = list(figure.panels.select_related("pair").order_by("index"))
    blind = decisions_hidden(pair, user)
    events = list(
        visible_events(pair, user, hidden=blind)
        .select_related("actor")
        .order_by("-created_at", "-id")[:50]
    )
    previous = (
        Review.objects.filter(expert=user, item_type=ITEM)
        .exclude(item_id=pair.pk)
        .order_by("-created_at")
        .values_list("item_id", flat=True)
        .first()
    )
    return ReviewContext(pair, pair.panel, figure, panels, events, previous, blind)


DECIDED_STATUSES = (Pair.Status.ACCEPTED, Pair.Status.EDITED, Pair.Status.REJECTED)


@dataclass(frozen=True)
class Progress:
    decided: int  # pairs in the filter with a final decision
    total: int  # pairs in the filter, whatever their status
    today: int  # decisions the expert made since local midnight, anywhere


@dataclass(frozen=True)
class NextPreview:
    crop: str | None = None
    page: str | None = None


def queue_progress(pairs: QuerySet[Pair], user) -> Progress:
    """ "12 / 119 · 8 today" for the review page: ``pairs`` is the queue's filter (book,
    modality, flag, doubt) over every status. Two counting queries."""
    counts = pairs.order_by().aggregate(
        total=Count("id"), decided=Count("id", filter=Q(status__in=DECIDED_STATUSES))
    )
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Review.objects.filter(expert=user, item_type=ITEM, created_at__gte=midnight).count()
    return Progress(decided=counts["decided"] or 0, total=counts["total"] or 0, today=today)


def next_preview(candidates: QuerySet[Pair], current_id: int) -> NextPreview:
    """The crop and page image of the pair Review / next will most likely give after
    ``current_id``, for the page to fetch ahead (``candidates``: the queue, filtered and
    ordered). A guess: another expert may take it first, which costs nothing but the prefetch.
    The pair's HTML is not fetched ahead: it comes back in the decision's own response, and
    fetching it earlier would claim it."""
    row = (
        candidates.exclude(pk=current_id)
        .exclude(panel__image="")
        .values_list("panel__image", "panel__figure__page__image")
        .first()
    )
    return NextPreview(crop=row[0], page=row[1] or None) if row else NextPreview()
