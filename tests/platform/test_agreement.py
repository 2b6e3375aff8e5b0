import pytest

from curation.agreement import (
    Rating,
    accept_class,
    cohen_kappa,
    cohen_kappa_from_table,
    counted_ratings,
    fleiss_kappa,
    fleiss_kappa_from_counts,
)


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, both no 15, a-yes/b-no 5, a-no/b-yes 10 -> kappa = 0.4
    a = ["y"] * 20 + ["n"] * 15 + ["y"] * 5 + ["n"] * 10
    b = ["y"] * 20 + ["n"] * 15 + ["n"] * 5 + ["y"] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_fleiss_kappa_matches_a_hand_computation():
    # 4 items x 3 raters. P_i: 1, 1/3, 1/3, 1 -> P_bar = 2/3; p(a)=p(b)=1/2 -> P_e = 1/2
    items = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "a"], ["b", "b", "b"]]
    assert fleiss_kappa(items) == pytest.approx(1 / 3)
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])


def test_accept_class():
    assert [accept_class(d) for d in ("accepted", "edited", "rejected")] == [
        "accepted",
        "accepted",
        "rejected",
    ]


# --- the dashboard's aggregate queries against the Python they replaced ----------------------


def python_agreement() -> dict:
    """The dashboard's agreement as it was computed before: every review row into Python, the
    ones that count chosen by ``counted_ratings``.

    Kept here as the oracle the database aggregation must match.
    """
    from collections import defaultdict
    from itertools import combinations

    from curation.models import Review, Textbook

    rows = list(
        Review.objects.filter(item_type="pair", adjudication=False)
        .values("item_id", "expert_id", "expert__username", "decision", "modality",
                "textbook_id", "independent")
        .order_by("created_at")
    )  # fmt: skip
    counted = counted_ratings(
        Rating(r["item_id"], r["expert_id"], r["decision"], r["modality"], r["independent"])
        for r in rows
    )
    ratings = {
        item: {e: (accept_class(r.decision), r.modality) for e, r in by.items()}
        for item, by in counted.items()
    }
    book_of = {r["item_id"]: r["textbook_id"] for r in rows}
    names = {
        r["expert_id"]: r["expert__username"]
        for r in rows
        if any(r["expert_id"] in by for by in ratings.values())
    }
    pairs_out = []
    for a, b in combinations(sorted(names), 2):
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


def _random_reviews(seed: int, make_user) -> None:
    """Random reviews: 1-4 experts per item, some re-reviews (the later one counts), some
    adjudications and re-decisions with another decision in view (never counted), several
    books with different rater counts."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    from curation.models import Review
    from tests.factories import make_book

    rng = random.Random(seed)
    experts = [make_user(f"e{seed}_{i}", "expert") for i in range(rng.randint(3, 7))]
    books = [make_book(f"Book {seed}.{i}", pages=1) for i in range(rng.randint(1, 4))]
    moments = iter(rng.sample(range(1, 10_000_000), 2000))  # distinct timestamps
    base = timezone.now() - timedelta(days=30)
    rows = []

    def add(item, book, expert, adjudication=False, independent=True):
        decision = rng.choices(["accepted", "edited", "rejected"], [5, 2, 3])[0]
        modality = rng.choice(["clinical", "clinical", "dermoscopic", "pathological", ""])
        rows.append((Review(item_type="pair", item_id=item, textbook=book, expert=expert,
                            decision=decision, modality=modality, adjudication=adjudication,
                            independent=independent and not adjudication),
                     base + timedelta(seconds=next(moments) / 10)))  # fmt: skip

    for item in range(1, rng.randint(40, 160)):
        book = rng.choice(books)
        raters = rng.sample(experts, min(len(experts), rng.choice([1, 2, 2, 2, 3, 4])))
        for expert in raters:
            add(item, book, expert)
        if len(raters) >= 2 and rng.random() < 0.15:
            add(item, book, rng.choice(raters))  # reviewed again after a revert
        if rng.random() < 0.1:
            add(item, book, rng.choice(experts), adjudication=True)
        if rng.random() < 0.2:
            add(item, book, rng.choice(experts), independent=False)  # overrode or changed one
    Review.objects.bulk_create(review for review, _ in rows)
    for review, created in rows:
        Review.objects.filter(pk=review.pk).update(created_at=created)


def _same(db_result: dict, py_result: dict) -> None:
    for key in ("expert_pairs", "books"):
        assert len(db_result[key]) == len(py_result[key]), key
        for mine, theirs in zip(db_result[key], py_result[key], strict=True):
            assert mine.keys() == theirs.keys()
            for field, value in theirs.items():
                if field.startswith("kappa") and value is not None:
                    assert mine[field] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, field)
                else:
                    assert mine[field] == value, (key, field)


@pytest.mark.parametrize("seed", range(8))
def test_database_agreement_matches_the_python_implementation(seed, db, make_user):
    from curation.selectors.dashboard import agreement, agreement_from_reviews
    from curation.services import agreement_counts

    _random_reviews(seed, make_user)
    expected = python_agreement()
    assert expected["expert_pairs"] and expected["books"]
    _same(agreement_from_reviews(), expected)
    agreement_counts.rebuild()  # the reviews were bulk-loaded, past the service
    _same(agreement(), expected)


def test_an_item_only_one_expert_reviewed_twice_is_left_out(db, make_user):
    """The Python version crashed on it (a book with a one-rater item has no Fleiss' kappa)."""
    from curation.models import Review
    from curation.selectors.dashboard import agreement_from_reviews as agreement
    from tests.factories import make_book

    book = make_book(pages=1)
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    for item, raters in ((1, [ann, bob]), (2, [ann, bob]), (3, [ann, ann])):
        for expert in raters:
            Review.objects.create(item_id=item, textbook=book, expert=expert, decision="accepted",
                                  modality="clinical")  # fmt: skip
    result = agreement()
    assert [(r["items"], r["kappa_decision"]) for r in result["expert_pairs"]] == [(2, 1.0)]
    assert [(r["items"], r["raters"]) for r in result["books"]] == [(2, 2)]


def test_an_override_of_another_experts_decision_is_not_a_second_opinion(db, make_user):
    """An expert who replaced a colleague's decision after seeing it (a reapply on a conflict)
    used to make the item count as reviewed by both, agreeing."""
    from curation.models import Review
    from curation.selectors.dashboard import agreement_from_reviews as agreement
    from tests.factories import make_book

    book = make_book(pages=1)
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    for item in (1, 2):
        Review.objects.create(item_id=item, textbook=book, expert=ann, decision="accepted",
                              modality="clinical")  # fmt: skip
    Review.objects.create(item_id=1, textbook=book, expert=bob, decision="rejected",
                          modality="clinical")  # fmt: skip
    Review.objects.create(item_id=2, textbook=book, expert=bob, decision="accepted",
                          modality="clinical", independent=False)  # fmt: skip
    result = agreement()
    assert [(r["items"], r["kappa_decision"]) for r in result["expert_pairs"]] == [(1, 0.0)]
    assert [(r["items"], r["raters"]) for r in result["books"]] == [(1, 2)]


def test_counted_ratings_keep_each_experts_latest_independent_rating():
    ratings = [
        Rating(1, 10, "accepted", "clinical"),
        Rating(1, 20, "rejected", "clinical"),
        Rating(1, 20, "accepted", "clinical", independent=False),  # changed after seeing 10's
        Rating(2, 10, "accepted", "clinical"),
        Rating(2, 10, "rejected", "clinical"),  # one expert twice is one rater
        Rating(3, 10, "accepted", "clinical"),
        Rating(3, 30, "accepted", "dermoscopic"),
        Rating(3, 30, "rejected", "dermoscopic"),  # after a revert: the later one counts
    ]
    counted = counted_ratings(ratings)
    assert sorted(counted) == [1, 3]
    assert counted[1][20].decision == "rejected" and counted[3][30].decision == "rejected"


def test_counts_based_kappas_match_the_list_based_ones():
    import random
    from collections import Counter

    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 30)
        a = [rng.choice("xyz") for _ in range(n)]
        b = [rng.choice("xyz") for _ in range(n)]
        table = Counter(zip(a, b, strict=True))
        assert cohen_kappa_from_table(table) == cohen_kappa(a, b)
        raters = rng.randint(2, 4)
        items = [[rng.choice("pq") for _ in range(raters)] for _ in range(n)]
        counts = [Counter(item) for item in items]
        sums = {
            label: (sum(c[label] for c in counts), sum(c[label] ** 2 for c in counts))
            for label in {x for item in items for x in item}
        }
        expected = fleiss_kappa(items)
        got = fleiss_kappa_from_counts(n, raters, sums)
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
