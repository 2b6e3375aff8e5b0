"""Agreement counters: the count tables kappa is computed from, kept as decisions land.

Computing agreement from scratch reads every review (``selectors.dashboard.
agreement_from_reviews``: a window-function query over the whole table, about 200 ms at
100,000 pairs). Here each decision updates the few counters its item touches, in the same
transaction, and the dashboard reads the counters: a few hundred rows whatever the size.

What counts is exactly what the from-scratch query counts, so the two can be compared (a test
does, over many random decision sequences): for each item that two or more different experts
decided independently (``Review.independent``, not an adjudication), each expert's latest
independent decision. An overwrite or a re-decision is not independent, and an undo that
removes or re-marks a review changes what counts; either way the service calls
``refresh_item`` after writing, which takes back what the item added before and adds what it
adds now (kept in ``AgreementItem``), so any change to an item's reviews is followed.

``manage.py rebuild_agreement`` recomputes everything from the reviews (after a bulk load, or
to check).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from curation.agreement import accept_class
from curation.models import AgreementCount, AgreementItem, Review

ITEM = "pair"
COHEN_DECISION, COHEN_MODALITY, FLEISS_DECISION, FLEISS_MODALITY, ITEMS = range(5)

Key = tuple[int, int, int, str, str]  # part, a, b, label_a, label_b


@dataclass(frozen=True)
class _Rating:
    expert: int
    book: int
    decision: str  # accepted | rejected
    modality: str
    first: tuple  # (first created_at, first id) of this expert's independent reviews


def _ratings(rows: Iterable[tuple]) -> list[_Rating]:
    """The ratings of one item that count, in the order its raters first rated it.

    ``rows``: (id, expert_id, textbook_id, decision, modality, created_at) of the item's
    independent, non-adjudication reviews.
    """
    latest: dict[int, tuple] = {}
    first_at: dict[int, object] = {}
    first_id: dict[int, int] = {}
    for row in rows:
        rid, expert, _, _, _, created = row
        if expert not in latest or (created, rid) > (latest[expert][5], latest[expert][0]):
            latest[expert] = row
        if expert not in first_at or created < first_at[expert]:
            first_at[expert] = created
        if expert not in first_id or rid < first_id[expert]:
            first_id[expert] = rid
    if len(latest) < 2:
        return []
    ratings = [
        _Rating(
            expert=expert,
            book=row[2],
            decision=accept_class(row[3]),
            modality=row[4] or "",
            first=(first_at[expert], first_id[expert]),
        )
        for expert, row in latest.items()
    ]
    return sorted(ratings, key=lambda r: r.first)


def contribution(rows: Iterable[tuple]) -> dict[Key, tuple[int, int]]:
    """What one item adds to the counters: key -> (n, squares)."""
    ratings = _ratings(rows)
    out: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    if not ratings:
        return {}
    by_expert = sorted(ratings, key=lambda r: r.expert)
    for i, x in enumerate(by_expert):
        for y in by_expert[i + 1 :]:
            out[(COHEN_DECISION, x.expert, y.expert, x.decision, y.decision)][0] += 1
            out[(COHEN_MODALITY, x.expert, y.expert, x.modality, y.modality)][0] += 1
    book = ratings[0].book  # an item's reviews all belong to its book
    out[(ITEMS, book, len(ratings), "", "")][0] += 1
    for r in range(2, len(ratings) + 1):
        kept = ratings[:r]
        for part, labels in (
            (FLEISS_DECISION, Counter(k.decision for k in kept)),
            (FLEISS_MODALITY, Counter(k.modality for k in kept)),
        ):
            for label, count in labels.items():
                cell = out[(part, book, r, label, "")]
                cell[0] += count
                cell[1] += count * count
    return {k: (v[0], v[1]) for k, v in out.items()}


def _rows_of(item_id: int, item_type: str = ITEM) -> list[tuple]:
    return list(
        Review.objects.filter(
            item_type=item_type, item_id=item_id, adjudication=False, independent=True
        ).values_list("id", "expert_id", "textbook_id", "decision", "modality", "created_at")
    )


def _apply(delta: dict[Key, tuple[int, int]]) -> None:
    """Add ``delta`` to the counters in one statement (an upsert: SQLite and Postgres)."""
    rows = sorted((k, v) for k, v in delta.items() if v != (0, 0))  # one lock order for all
    if not rows:
        return
    table = AgreementCount._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params = [x for (key, (n, sq)) in rows for x in (*key, n, sq)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (part, a, b, label_a, label_b, n, squares) VALUES {values} "
            "ON CONFLICT (part, a, b, label_a, label_b) DO UPDATE SET "
            f"n = {table}.n + excluded.n, squares = {table}.squares + excluded.squares",
            params,
        )


def _decode(stored: list) -> dict[Key, tuple[int, int]]:
    return {
        (int(p), int(a), int(b), la, lb): (int(n), int(sq)) for p, a, b, la, lb, n, sq in stored
    }


def refresh_item(item_id: int, item_type: str = ITEM, *, added: bool = False) -> None:
    """Bring the counters up to date with the item's reviews as they are now.

    Call it in the transaction that wrote the item's reviews (a decision, an overwrite, an
    undo), after the write, with the item locked: it takes back what the item added before
    and adds what it adds now. ``added``: the write only added a review (a decision), so an
    item that counts for nothing now never counted before, and there is nothing to look up
    (one query per decision on a pair reviewed once, not three).
    """
    if item_type != ITEM:
        return  # agreement is measured on pairs
    with transaction.atomic(savepoint=False):
        new = contribution(_rows_of(item_id, item_type))
        if added and not new:
            return
        stored = (
            AgreementItem.objects.select_for_update()
            .filter(item_type=item_type, item_id=item_id)
            .first()
        )
        old = _decode(stored.counts) if stored else {}
        if new == old:
            return
        delta = {
            key: (new.get(key, (0, 0))[0] - old.get(key, (0, 0))[0],
                  new.get(key, (0, 0))[1] - old.get(key, (0, 0))[1])
            for key in new.keys() | old.keys()
        }  # fmt: skip
        _apply(delta)
        encoded = [[*key, n, sq] for key, (n, sq) in sorted(new.items())]
        if stored is None:
            AgreementItem.objects.create(item_type=item_type, item_id=item_id, counts=encoded)
        elif encoded:
            stored.counts = encoded
            stored.save(update_fields=["counts"])
        else:
            stored.delete()


def rebuild(review_model=Review, count_model=AgreementCount, item_model=AgreementItem) -> int:
    """Recompute every counter from the reviews; returns the number of items that count.

    The models are parameters so that a migration can run it on its historical models.
    """
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    items = []
    rows = (
        review_model.objects.filter(item_type=ITEM, adjudication=False, independent=True)
        .order_by("item_id")
        .values_list("item_id", "id", "expert_id", "textbook_id", "decision", "modality",
                     "created_at")
    )  # fmt: skip

    def flush(item_id, group) -> None:
        counts = contribution(group)
        if not counts:
            return
        for key, (n, sq) in counts.items():
            totals[key][0] += n
            totals[key][1] += sq
        items.append(
            item_model(
                item_type=ITEM,
                item_id=item_id,
                counts=[[*key, n, sq] for key, (n, sq) in sorted(counts.items())],
            )
        )

    with transaction.atomic():
        count_model.objects.all().delete()
        item_model.objects.all().delete()
        current, group = None, []
        for item_id, *row in rows.iterator(chunk_size=5000):
            if item_id != current:
                if group:
                    flush(current, group)
                current, group = item_id, []
            group.append(tuple(row))
        if group:
            flush(current, group)
        count_model.objects.bulk_create(
            (
                count_model(part=k[0], a=k[1], b=k[2], label_a=k[3], label_b=k[4], n=v[0],
                            squares=v[1])
                for k, v in sorted(totals.items())
            ),
            batch_size=2000,
        )  # fmt: skip
        item_model.objects.bulk_create(items, batch_size=2000)
    return len(items)
