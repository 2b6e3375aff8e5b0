"""Curator dashboard figures: aggregate queries over indexed columns, never row loops.

The per-book/modality/status counts come from one GROUP BY on the pair queue index; expert
throughput and timing from the Review table (indexed by expert and day); agreement from the
reviews of items that more than one expert reviewed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import CharField, Count, Q
from django.db.models.functions import Substr, TruncDate
from django.utils import timezone

from curation.agreement import cohen_kappa_from_table, fleiss_kappa_from_counts
from curation.models import AgreementCount, Pair, Review, Textbook

STATUSES = list(Pair.Status.values)


def progress(book_id: int | None = None) -> list[dict]:
    """Pairs per (book, modality) with a count per status (of one book, with ``book_id``)."""
    rows = Pair.objects.all()
    if book_id is not None:
        rows = rows.filter(textbook_id=book_id)
    # Grouped in the order of the queue index (status, textbook, modality): the database
    # counts along the index instead of hashing 100,000 keys (a third faster).
    rows = (
        rows.values("status", "textbook_id", "modality")
        .annotate(n=Count("id"))
        .order_by("status", "textbook_id", "modality")
    )
    books = Textbook.objects.all() if book_id is None else Textbook.objects.filter(pk=book_id)
    titles = dict(books.values_list("id", "title"))
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
    return [table[key] for key in sorted(table)]


def by_book(rows: list[dict]) -> list[dict]:
    """``progress`` rows summed per book, each with its per-modality rows (``modalities``)."""
    books: dict[int, dict] = {}
    for row in rows:
        entry = books.setdefault(
            row["book_id"],
            {"book": row["book"], "book_id": row["book_id"], "total": 0,
             **dict.fromkeys(STATUSES, 0), "modalities": []},
        )  # fmt: skip
        entry["total"] += row["total"]
        for status in STATUSES:
            entry[status] += row[status]
        entry["modalities"].append(row)
    return sorted(books.values(), key=lambda b: (b["book"], b["book_id"]))


def by_modality(rows: list[dict]) -> list[dict]:
    """``progress`` rows summed per modality, over all books."""
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(
            row["modality"], {"modality": row["modality"], "total": 0, **dict.fromkeys(STATUSES, 0)}
        )
        entry["total"] += row["total"]
        for status in STATUSES:
            entry[status] += row[status]
    return sorted(out.values(), key=lambda m: m["modality"])


def totals(rows: list[dict]) -> dict:
    out = {"total": 0, **dict.fromkeys(STATUSES, 0)}
    for row in rows:
        out["total"] += row["total"]
        for status in STATUSES:
            out[status] += row[status]
    return out


def experts(throughput_rows: list[dict], timing_rows: list[dict], days: int = 14) -> list[dict]:
    """One row per expert: reviews per day over the last ``days`` days (oldest first, zeros
    included, so a chart's bars line up by day), the total, and the median seconds."""
    today = timezone.localdate()
    calendar = [today - timedelta(days=days - 1 - i) for i in range(days)]
    per: dict[str, dict] = {}
    for row in throughput_rows:
        per.setdefault(row["expert"], {})[row["day"]] = row["reviews"]
    timing = {row["expert"]: row for row in timing_rows}
    out = []
    for name in sorted(per.keys() | timing.keys()):
        counts = per.get(name, {})
        series = [{"day": day, "reviews": counts.get(day, 0)} for day in calendar]
        out.append(
            {
                "expert": name,
                "days": series,
                "total": sum(d["reviews"] for d in series),
                "median": timing.get(name, {}).get("median"),
                "timed": timing.get(name, {}).get("n", 0),
            }
        )
    return out


def day_starts(days: int) -> list[datetime]:
    """The local midnights that bound the last ``days`` calendar days (today last), as
    aware datetimes: ``days + 1`` of them, right across daylight-saving changes."""
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    return [
        timezone.make_aware(datetime.combine(today - timedelta(days=d), time.min), tz)
        for d in range(days - 1, -2, -1)
    ]


def throughput(days: int = 14) -> list[dict]:
    """Decisions per expert per day over the last ``days`` local calendar days (most recent
    first), read from the (created_at, expert) index alone.

    Postgres converts each review's time to a local date natively. SQLite would do it in
    Python, row by row (a second at 100,000 pairs), so there the reviews are counted per UTC
    hour in SQL and the hours put into local days here; where the time zone is not a whole
    number of hours off UTC, a conditional count per day does it, exact but slower.
    """
    starts = day_starts(days)
    period = Review.objects.filter(created_at__gte=starts[0], created_at__lt=starts[-1])
    counts: dict[tuple[int, object], int] = defaultdict(int)
    if connection.vendor == "postgresql":
        rows = (
            period.annotate(day=TruncDate("created_at"))
            .values("expert_id", "day")
            .annotate(n=Count("id"))
            .order_by()
        )
        for r in rows:
            counts[(r["expert_id"], r["day"])] += r["n"]
    elif all(s.astimezone(UTC).minute == 0 for s in starts):
        rows = (
            period.annotate(hour=Substr("created_at", 1, 13, output_field=CharField()))
            .values("expert_id", "hour")
            .annotate(n=Count("id"))
            .order_by()
        )
        local_day: dict[str, object] = {}  # a few hundred hours, shared by every expert
        for expert_id, hour, n in rows.values_list("expert_id", "hour", "n"):
            if hour not in local_day:
                utc = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
                local_day[hour] = timezone.localtime(utc).date()
            counts[(expert_id, local_day[hour])] += n
    else:
        per_day = {
            f"d{i}": Count("id", filter=Q(created_at__gte=starts[i], created_at__lt=starts[i + 1]))
            for i in range(days)
        }
        for r in period.values("expert_id").annotate(**per_day).order_by():
            for i in range(days):
                counts[(r["expert_id"], starts[i].date())] += r[f"d{i}"]
    names = _usernames({expert for expert, _ in counts})
    out = [
        {"expert": names[expert], "day": day, "reviews": n}
        for (expert, day), n in counts.items()
        if n
    ]
    out.sort(key=lambda r: r["expert"])
    out.sort(key=lambda r: r["day"], reverse=True)
    return out[:500]


def median_seconds() -> list[dict]:
    """Median seconds from claim to decision, per expert (read in order from the partial
    index on timed reviews, never sorted)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT expert_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), "
                "count(*) FROM curation_review WHERE seconds IS NOT NULL GROUP BY expert_id"
            )
            rows = cursor.fetchall()
    else:  # the embedded demo's SQLite has no percentile: the middle rows, from the index
        counts = (
            Review.objects.filter(seconds__isnull=False)
            .values("expert_id")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("expert_id", "n")
        )
        rows = []
        for expert_id, n in list(counts):
            start = (n - 1) // 2
            middle = list(
                Review.objects.filter(expert_id=expert_id, seconds__isnull=False)
                .order_by("seconds")
                .values_list("seconds", flat=True)[start : start + 2 - n % 2]
            )
            rows.append((expert_id, sum(middle) / len(middle), n))
    names = _usernames({e for e, _, _ in rows})
    return sorted(
        ({"expert": names[e], "median": m, "n": n} for e, m, n in rows),
        key=lambda r: r["expert"],
    )


def _usernames(ids) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("id", "username"))


# Agreement in one statement. ``ratings``: for each pair that two or more experts reviewed
# independently (not adjudicated, not re-decided with a decision in view: ``Review.independent``),
# each expert's latest independent review of it, labelled accepted/rejected (d) and by
# modality (m); ``first_at``/``first_id`` order an item's raters by when they first reviewed it.
# Out come count tables, never rows per review:
#   part 0/1: per expert pair (x < y) and label of x, label of y: shared items (Cohen's kappa;
#             0 = accept/reject, 1 = modality);
#   part 2/3: per book, with r = the fewest raters any of its items had (items with more keep
#             their first r), per label: ratings with it, and the sum over items of its count
#             squared (Fleiss' kappa; 2 = accept/reject, 3 = modality).
_AGREEMENT_SQL = """
WITH rated AS (
    SELECT r.id, r.item_id, r.expert_id, r.textbook_id, r.created_at,
           CASE WHEN r.decision = 'rejected' THEN 'rejected' ELSE 'accepted' END AS d,
           r.modality AS m
    FROM {review} r
    WHERE r.item_type = %(item)s AND r.adjudication = %(no)s AND r.independent
      AND r.item_id IN (SELECT item_id FROM {review}
                        WHERE item_type = %(item)s AND adjudication = %(no)s AND independent
                        GROUP BY item_id HAVING COUNT(DISTINCT expert_id) >= 2)
), latest AS (
    SELECT item_id, expert_id, textbook_id, d, m,
           ROW_NUMBER() OVER (PARTITION BY item_id, expert_id
                              ORDER BY created_at DESC, id DESC) AS newest,
           MIN(created_at) OVER (PARTITION BY item_id, expert_id) AS first_at,
           MIN(id) OVER (PARTITION BY item_id, expert_id) AS first_id
    FROM rated
), ratings AS (
    SELECT item_id, expert_id, textbook_id, d, m, first_at, first_id,
           COUNT(*) OVER (PARTITION BY item_id) AS raters
    FROM latest WHERE newest = 1
), shared AS (
    SELECT a.expert_id AS x, b.expert_id AS y, a.d AS dx, b.d AS dy, a.m AS mx, b.m AS my
    FROM ratings a JOIN ratings b ON b.item_id = a.item_id AND a.expert_id < b.expert_id
), kept AS (
    SELECT textbook_id, item_id, d, m, book_raters FROM (
        SELECT textbook_id, item_id, d, m,
               ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY first_at, first_id) AS k,
               MIN(raters) OVER (PARTITION BY textbook_id) AS book_raters
        FROM ratings WHERE raters >= 2
    ) ranked WHERE k <= book_raters
)
SELECT 0, x, y, dx, dy, COUNT(*), 0 FROM shared GROUP BY x, y, dx, dy
UNION ALL
SELECT 1, x, y, mx, my, COUNT(*), 0 FROM shared GROUP BY x, y, mx, my
UNION ALL
SELECT 2, textbook_id, book_raters, label, NULL, SUM(n), SUM(n * n) FROM (
    SELECT textbook_id, book_raters, item_id, d AS label, COUNT(*) AS n
    FROM kept GROUP BY textbook_id, book_raters, item_id, d
) cells GROUP BY textbook_id, book_raters, label
UNION ALL
SELECT 3, textbook_id, book_raters, label, NULL, SUM(n), SUM(n * n) FROM (
    SELECT textbook_id, book_raters, item_id, m AS label, COUNT(*) AS n
    FROM kept GROUP BY textbook_id, book_raters, item_id, m
) cells GROUP BY textbook_id, book_raters, label
"""


def agreement_from_reviews() -> dict:
    """Cohen's kappa per expert pair, Fleiss' kappa per book, on accept/reject and modality,
    computed from scratch over every review: the reference the counters are checked against
    (``agreement`` reads the counters; ``manage.py rebuild_agreement`` compares the two).

    One aggregate query counts label combinations in the database, so what comes back and
    what Python does grows with experts and books, not with reviews. Each expert's latest
    independent review of an item counts; items fewer than two experts reviewed independently
    do not, and neither do overrides, re-decisions or adjudications (``Review.independent``).
    """
    pair_tables: dict[tuple[int, int], tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    book_sums: dict[tuple[int, int], tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    with connection.cursor() as cursor:
        cursor.execute(
            _AGREEMENT_SQL.format(review=Review._meta.db_table), {"item": "pair", "no": False}
        )
        for part, a, b, label_a, label_b, n, squares in cursor.fetchall():
            if part < 2:
                pair_tables[(a, b)][part][(label_a, label_b)] = int(n)
            else:
                book_sums[(a, b)][part - 2][label_a] = (int(n), int(squares))
    return _kappas(pair_tables, book_sums)


def agreement() -> dict:
    """Agreement as ``agreement_from_reviews`` computes it, from the counters the review
    service keeps (``AgreementCount``): a few hundred rows, whatever the number of reviews."""
    pair_tables: dict[tuple[int, int], tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    items: dict[int, dict[int, int]] = defaultdict(dict)
    fleiss: dict[tuple[int, int], tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
    rows = AgreementCount.objects.exclude(n=0).values_list(
        "part", "a", "b", "label_a", "label_b", "n", "squares"
    )
    for part, a, b, label_a, label_b, n, squares in rows:
        if part < 2:
            pair_tables[(a, b)][part][(label_a, label_b)] = n
        elif part < 4:
            fleiss[(a, b)][part - 2][label_a] = (n, squares)
        else:
            items[a][b] = n
    book_sums = {}
    for book, by_raters in items.items():
        raters = min(by_raters)  # each item keeps its first r ratings, r the fewest any has
        book_sums[(book, raters)] = fleiss[(book, raters)]
    return _kappas(pair_tables, book_sums)


def _kappas(pair_tables: dict, book_sums: dict) -> dict:
    """Kappas from count tables. The tables are sorted first so that both sources (the
    counters, the from-scratch query) sum in one order and give the very same floats."""
    pair_tables = {k: (dict(sorted(d.items())), dict(sorted(m.items())))
                   for k, (d, m) in pair_tables.items()}  # fmt: skip
    book_sums = {k: (dict(sorted(d.items())), dict(sorted(m.items())))
                 for k, (d, m) in book_sums.items()}  # fmt: skip
    names = _usernames({e for pair in pair_tables for e in pair})
    pairs_out = [
        {
            "experts": f"{names[a]} / {names[b]}",
            "items": sum(decisions.values()),
            "kappa_decision": cohen_kappa_from_table(decisions),
            "kappa_modality": cohen_kappa_from_table(modalities),
        }
        for (a, b), (decisions, modalities) in sorted(pair_tables.items())
    ]
    titles = dict(
        Textbook.objects.filter(pk__in={b for b, _ in book_sums}).values_list("id", "title")
    )
    books_out = []
    for (book_id, raters), (decisions, modalities) in sorted(book_sums.items()):
        items = sum(total for total, _ in decisions.values()) // raters
        books_out.append(
            {
                "book": titles.get(book_id, "?"),
                "items": items,
                "raters": raters,
                "kappa_decision": fleiss_kappa_from_counts(items, raters, decisions),
                "kappa_modality": fleiss_kappa_from_counts(items, raters, modalities),
            }
        )
    return {"expert_pairs": pairs_out, "books": books_out}
