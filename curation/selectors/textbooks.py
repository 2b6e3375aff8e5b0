"""Reads for books, figures and pairs, shaped for the views that show them."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from curation.models import Figure, Pair, Textbook


def textbooks() -> QuerySet[Textbook]:
    return Textbook.objects.all()


def figures_of(book_id: int | None = None) -> QuerySet[Figure]:
    qs = Figure.objects.select_related("page").prefetch_related("panels")
    if book_id is not None:
        qs = qs.filter(textbook_id=book_id)
    return qs.order_by("page__number", "id")


def pairs() -> QuerySet[Pair]:
    return Pair.objects.select_related("panel", "panel__figure")


def pair_counts(book_id: int) -> dict[str, int]:
    """Pairs per review status for one book, in one aggregate query."""
    agg = Pair.objects.filter(textbook_id=book_id).aggregate(
        total=Count("id"),
        **{status: Count("id", filter=Q(status=status)) for status in Pair.Status.values},
    )
    return agg
