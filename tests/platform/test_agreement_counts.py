"""The agreement counters the review service keeps equal the from-scratch computation, after
every step of many random decision sequences (blind multi-review rounds, disputes and
adjudications, re-decisions and overrides, and what an undo may do to an item's reviews)."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command

from curation.models import AgreementCount, Pair, ProjectSettings, Review
from curation.selectors.dashboard import agreement, agreement_from_reviews
from curation.services import agreement_counts
from curation.services import review as svc
from curation.services.errors import ServiceError
from tests.factories import make_book, make_pairs
from tests.platform.test_agreement import _same

MODALITIES = ["clinical", "dermoscopic", "pathological"]


def _table() -> dict:
    return {
        (c.part, c.a, c.b, c.label_a, c.label_b): (c.n, c.squares)
        for c in AgreementCount.objects.exclude(n=0, squares=0)
    }


def _check(what: str) -> None:
    counted, scratch = agreement(), agreement_from_reviews()
    _same(counted, scratch)
    assert counted == scratch, what  # the very same floats: both sum in one order
    kept = _table()
    agreement_counts.rebuild()
    assert _table() == kept, what


def _step(rng: random.Random, pairs, experts, curator) -> str:
    pair = Pair.objects.get(pk=rng.choice(pairs).pk)
    user = rng.choice([*experts, curator]) if pair.status == "disputed" else rng.choice(experts)
    kind = rng.choices(["decide", "undo", "unmark"], [10, 1, 1])[0]
    if kind == "undo":
        # An undo takes a decision back: whatever shape it takes in the review service (the
        # review row removed, or kept and marked as not independent), the counters follow.
        review = Review.objects.filter(item_id=pair.pk).order_by("-id").first()
        if review is None:
            return "undo (nothing)"
        review.delete()
        agreement_counts.refresh_item(pair.pk)
        return "undo (review removed)"
    if kind == "unmark":
        review = Review.objects.filter(item_id=pair.pk, independent=True).order_by("?").first()
        if review is None:
            return "unmark (nothing)"
        Review.objects.filter(pk=review.pk).update(independent=False)
        agreement_counts.refresh_item(pair.pk)
        return "unmark"
    if pair.status == "disputed":
        user = curator
    action = rng.choice(["accept", "accept", "reject"])
    changes = {"modality": rng.choice(MODALITIES)} if rng.random() < 0.5 else {}
    try:
        svc.review_pair(
            pair.pk, user, version=pair.version, action=action, changes=changes,
            reason="poor_quality" if action == "reject" else "", redecide=rng.random() < 0.7,
        )  # fmt: skip
    except ServiceError as exc:
        return f"refused ({exc.code})"
    return f"{user.username} {action}"


@pytest.mark.parametrize("seed", range(12))
def test_counters_equal_the_from_scratch_computation(seed, db, make_user):
    rng = random.Random(seed)
    settings = ProjectSettings.current()
    settings.reviews_per_item = rng.choice([1, 2, 2, 3])
    settings.save()
    experts = [make_user(f"e{seed}_{i}", "expert") for i in range(rng.randint(2, 4))]
    curator = make_user(f"c{seed}", "curator", "expert")
    pairs = []
    for b in range(rng.randint(1, 2)):
        pairs += make_pairs(make_book(f"Book {seed}.{b}", pages=2), rng.randint(3, 6))
    for number in range(rng.randint(25, 45)):
        what = f"seed {seed} step {number}: {_step(rng, pairs, experts, curator)}"
        _check(what)
    assert Review.objects.exists()


def test_a_decision_updates_the_counters_in_its_own_transaction(db, make_user):
    """Two experts decide one pair blind: kappa is there at once, with no rebuild."""
    ProjectSettings.objects.update_or_create(pk=1, defaults={"reviews_per_item": 2})
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    (pair,) = make_pairs(make_book(pages=1), 1)
    svc.review_pair(pair.pk, ann, version=pair.version, action="accept")
    assert agreement() == {"expert_pairs": [], "books": []}
    pair.refresh_from_db()
    svc.review_pair(pair.pk, bob, version=pair.version, action="accept")
    result = agreement()
    assert [(r["experts"], r["items"]) for r in result["expert_pairs"]] == [("ann / bob", 1)]
    assert [(r["items"], r["raters"]) for r in result["books"]] == [(1, 2)]


def test_an_overwrite_by_another_expert_is_not_counted(db, make_user):
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    (pair,) = make_pairs(make_book(pages=1), 1)
    svc.review_pair(pair.pk, ann, version=pair.version, action="accept")
    pair.refresh_from_db()
    svc.review_pair(pair.pk, bob, version=pair.version, action="accept", redecide=True)
    assert agreement() == {"expert_pairs": [], "books": []}
    assert not AgreementCount.objects.exclude(n=0).exists()


def test_rebuild_command_restores_and_checks_the_counters(db, make_user, capsys):
    ProjectSettings.objects.update_or_create(pk=1, defaults={"reviews_per_item": 2})
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    for pair in make_pairs(make_book(pages=1), 3):
        for user in (ann, bob):
            pair.refresh_from_db()
            svc.review_pair(pair.pk, user, version=pair.version, action="accept")
    want = agreement()
    AgreementCount.objects.update(n=0)  # counters lost (a bulk load past the service)
    with pytest.raises(Exception, match="differ"):
        call_command("rebuild_agreement", "--check")
    call_command("rebuild_agreement")
    assert "3 item(s)" in capsys.readouterr().out
    assert agreement() == want
    call_command("rebuild_agreement", "--check")


def test_the_review_services_undo_takes_the_decision_out_of_the_counters(db, make_user):
    """Two blind reviews agree; the second expert undoes theirs: kappa must lose the pair."""
    ProjectSettings.objects.update_or_create(pk=1, defaults={"reviews_per_item": 2})
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    (pair,) = make_pairs(make_book(pages=1), 1)
    svc.review_pair(pair.pk, ann, version=pair.version, action="accept")
    pair.refresh_from_db()
    svc.review_pair(pair.pk, bob, version=pair.version, action="accept")
    assert [r["items"] for r in agreement()["expert_pairs"]] == [1]
    from curation.models import ReviewEvent

    decision = ReviewEvent.objects.filter(target_id=pair.pk, actor=bob).latest("id")
    svc.undo_decision(pair.pk, bob, event_id=decision.pk)
    assert agreement() == {"expert_pairs": [], "books": []}
    _check("after the service's undo")
