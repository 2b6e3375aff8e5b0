"""Curator dashboard figures: aggregate queries over indexed columns, never row loops.

The per-book/modality/status counts come from one GROUP BY on the pair queue index; expert
throughput and timing from the Review table (indexed by expert and day); agreement from the
reviews of items that more than one expert reviewed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from itertools import combinations

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate

from curation.agreement import accept_class, cohen_kappa, fleiss_kappa
from curation.models import Pair, Review, Textbook

STATUSES = list(Pair.Status.values)


def progress() -> list[dict]:
    """Pairs per (book, modality) with a count per status."""
    rows = (
        Pair.objects.values("textbook_id", "modality", "status")
        .annotate(n=Count("id"))
        .order_by("textbook_id", "modality")
    )
    titles = dict(Textbook.objects.values_list("id", "title"))
    table: dict[tuple[int, str], dict] = {}
    for row in rows:
        key = (row["textbook_id"], row["modality"])
        entry = table.setdefault(
            key,
            {"book": titles.get(row["textbook_id"], "?"), "book_id": row["textbook_id"],
             "modality": row["modality"], "total": 0, **dict.fromkeys(STATUSES, 0)},
        )  # fmt: skip
        entry[row["status"]] = row["n"]
        entry["total"] += row["n"]
    return list(table.values())


def throughput(days: int = 14) -> list[dict]:
    """Decisions per expert per day (most recent first)."""
    rows = (
        Review.objects.annotate(day=TruncDate("created_at"))
        .values("expert__username", "day")
        .annotate(n=Count("id"))
        .order_by("-day", "expert__username")
    )
    return [
        {"expert": r["expert__username"], "day": r["day"], "reviews": r["n"]} for r in rows[:500]
    ]


def median_seconds() -> list[dict]:
    """Median seconds from claim to decision, per expert."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT u.username, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.seconds), "
                "count(*) FROM curation_review r JOIN auth_user u ON u.id = r.expert_id "
                "WHERE r.seconds IS NOT NULL GROUP BY u.username ORDER BY u.username"
            )
            return [{"expert": u, "median": m, "n": n} for u, m, n in cursor.fetchall()]
    per: dict[str, list[float]] = defaultdict(list)
    for user, seconds in Review.objects.filter(seconds__isnull=False).values_list(
        "expert__username", "seconds"
    ):
        per[user].append(seconds)
    return [
        {"expert": u, "median": statistics.median(v), "n": len(v)} for u, v in sorted(per.items())
    ]


def agreement() -> dict:
    """Cohen's kappa per expert pair, Fleiss' kappa per book, on accept/reject and modality."""
    ratings: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
    book_of: dict[int, int] = {}
    names: dict[int, str] = {}
    multi = (
        Review.objects.filter(item_type="pair", adjudication=False)
        .values("item_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values("item_id")
    )
    rows = Review.objects.filter(item_type="pair", adjudication=False, item_id__in=multi)
    for r in rows.values("item_id", "expert_id", "expert__username", "decision", "modality",
                         "textbook_id").order_by("created_at"):  # fmt: skip
        ratings[r["item_id"]][r["expert_id"]] = (accept_class(r["decision"]), r["modality"])
        book_of[r["item_id"]] = r["textbook_id"]
        names[r["expert_id"]] = r["expert__username"]

    pairs_out = []
    experts = sorted(names)
    for a, b in combinations(experts, 2):
        shared = [item for item, by in ratings.items() if a in by and b in by]
        if not shared:
            continue
        pairs_out.append(
            {
                "experts": f"{names[a]} / {names[b]}",
                "items": len(shared),
                "kappa_decision": cohen_kappa(
                    [ratings[i][a][0] for i in shared], [ratings[i][b][0] for i in shared]
                ),
                "kappa_modality": cohen_kappa(
                    [ratings[i][a][1] for i in shared], [ratings[i][b][1] for i in shared]
                ),
            }
        )
    books_out = []
    titles = dict(Textbook.objects.values_list("id", "title"))
    by_book: dict[int, list[list[tuple[str, str]]]] = defaultdict(list)
    for item, by in ratings.items():
        by_book[book_of[item]].append(list(by.values()))
    for book_id, items in sorted(by_book.items()):
        raters = min(len(r) for r in items)
        trimmed = [r[:raters] for r in items]
        books_out.append(
            {
                "book": titles.get(book_id, "?"),
                "items": len(items),
                "raters": raters,
                "kappa_decision": fleiss_kappa([[d for d, _ in r] for r in trimmed]),
                "kappa_modality": fleiss_kappa([[m for _, m in r] for r in trimmed]),
            }
        )
    return {"expert_pairs": pairs_out, "books": books_out}
