"""Inter-rater agreement. Pure functions: no Django, so they are easy to check by hand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when it is undefined."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[k] * count_b[k] for k in count_a.keys() | count_b.keys()) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa(items: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa: each item rated by the same number (>= 2) of raters."""
    items = [list(ratings) for ratings in items if ratings]
    if not items:
        return None
    raters = len(items[0])
    if raters < 2 or any(len(r) != raters for r in items):
        raise ValueError("every item needs the same number (>= 2) of ratings")
    total = len(items) * raters
    category_totals: Counter[str] = Counter()
    agreement = 0.0
    for ratings in items:
        counts = Counter(ratings)
        category_totals.update(counts)
        agreement += (sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1))
    p_bar = agreement / len(items)
    p_e = sum((c / total) ** 2 for c in category_totals.values())
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else None
    return (p_bar - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class Rating:
    """One decision on one item, as agreement sees it."""

    item: int
    expert: int
    decision: str
    modality: str
    independent: bool = True  # made on an undecided item, with no other decision in view


def counted_ratings(ratings: Iterable[Rating]) -> dict[int, dict[int, Rating]]:
    """Item -> expert -> the rating that counts: each expert's latest independent one, on the
    items that two or more different experts rated independently (``ratings`` in the order
    they were made).

    A decision made with another in view (changing a decision, replacing a colleague's after
    a conflict, adjudicating) is not a second opinion: counting it would report agreement
    that nobody measured. Two decisions by one expert are one rater.
    """
    by_item: dict[int, dict[int, Rating]] = {}
    for rating in ratings:
        if rating.independent:
            by_item.setdefault(rating.item, {})[rating.expert] = rating
    return {item: by for item, by in by_item.items() if len(by) >= 2}


def accept_class(decision: str) -> str:
    """Accept-or-reject view of a decision: an edit is an acceptance of the image."""
    return "rejected" if decision == "rejected" else "accepted"


def cohen_kappa_from_table(table: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa from a contingency table: (rater a's label, rater b's label) -> items.

    The same number as ``cohen_kappa`` over the lists the table counts, computed the same way
    (integer counts, one division each), so a database can do the counting.
    """
    n = sum(table.values())
    if n == 0:
        return None
    observed = sum(c for (x, y), c in table.items() if x == y) / n
    count_a: Counter[str] = Counter()
    count_b: Counter[str] = Counter()
    for (x, y), c in table.items():
        count_a[x] += c
        count_b[y] += c
    expected = sum(count_a[k] * count_b[k] for k in count_a.keys() | count_b.keys()) / (n * n)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa_from_counts(
    items: int, raters: int, categories: Mapping[str, tuple[int, int]]
) -> float | None:
    """Fleiss' kappa from sums a database can compute with GROUP BY.

    ``categories`` maps each label to (ratings with it in all items, the sum over items of the
    square of its count in the item); ``items`` items were each rated by ``raters`` raters.
    """
    if items == 0:
        return None
    if raters < 2:
        raise ValueError("every item needs the same number (>= 2) of ratings")
    total = items * raters
    squares = sum(sq for _, sq in categories.values())
    p_bar = (squares - items * raters) / (raters * (raters - 1)) / items
    p_e = sum((t / total) ** 2 for t, _ in categories.values())
    if p_e == 1.0:
        return 1.0 if p_bar == 1.0 else None
    return (p_bar - p_e) / (1.0 - p_e)
