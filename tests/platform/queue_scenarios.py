"""Claim and review scenarios, run on whatever database the settings name, as a trace.

``test_queue_parity`` runs this module in two subprocesses, one on SQLite and one on Postgres,
and expects the same trace: the review queue has a plain-SQL path for Postgres and an ORM path
for SQLite (``services.review``), and both must give every expert the same pairs in the same
order and refuse the same writes. Pairs are named by their index, not their id.

    DJANGO_SETTINGS_MODULE=tests.settings DATABASE_URL=... python -m tests.platform.queue_scenarios
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta


def run() -> list:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from curation.models import Claim, Pair
    from curation.services import review
    from curation.services.errors import ServiceError
    from tests.factories import make_book, make_pairs

    def user(name: str, *roles: str):
        u = get_user_model().objects.create_user(username=name, password="x")
        u.groups.set([Group.objects.get_or_create(name=r)[0] for r in roles])
        return u

    trace: list = []
    book_a, book_b = make_book("A", pages=4), make_book("B", pages=4)
    pairs = make_pairs(book_a, 5) + make_pairs(book_b, 3, modality="dermoscopic")
    index = {p.pk: i for i, p in enumerate(pairs)}
    Pair.objects.filter(pk=pairs[3].pk).update(extract_confidence=0.2)
    Pair.objects.filter(pk=pairs[4].pk).update(extract_doubts=["caption split"])
    Pair.objects.filter(pk=pairs[6].pk).update(flags=["poor_quality"])
    ann, bob, cat = user("ann", "expert"), user("bob", "expert"), user("cat", "expert")
    cur, nobody = user("cur", "curator"), user("nobody")

    def claim(who, **filters):
        pair_id = review.claim_next_id(who, review.QueueFilter(**filters))
        return None if pair_id is None else index[pair_id]

    def step(label, fn):
        try:
            trace.append([label, fn()])
        except ServiceError as exc:
            trace.append([label, "refused", exc.code])

    def decide(who, i, action="accept", **kw):
        pair = Pair.objects.get(pk=pairs[i].pk)
        done = review.review_pair(pair.pk, who, version=pair.version, action=action, **kw)
        return [done.status, done.version]

    step("ann claims", lambda: claim(ann))
    step("ann again: the same pair", lambda: claim(ann))
    step("bob: the next free one", lambda: claim(bob))
    step("bob writes ann's pair", lambda: decide(bob, 0))
    step("ann accepts", lambda: decide(ann, 0))
    step(
        "ann re-decides without asking",
        lambda: decide(ann, 0, action="reject", reason="other", note="n"),
    )
    step("ann skips her next", lambda: (claim(ann), review.skip_pair(pairs[2].pk, ann))[0])
    step("ann is not offered it again", lambda: claim(ann))
    step("cat by book B", lambda: claim(cat, textbook_id=book_b.pk))
    step("cat by modality (held pair kept)", lambda: claim(cat, modality="dermoscopic"))
    step("cat releases", lambda: review.release_claim(cat, pairs[5].pk))
    step("cat by flag", lambda: claim(cat, flag="poor_quality"))
    review.release_claim(cat, pairs[6].pk)
    step("cat doubtful only", lambda: claim(cat, doubtful=True))
    review.release_claim(cat, pairs[4].pk)
    step("cat doubtful first", lambda: claim(cat, order="doubtful"))
    step("a stale version is refused", lambda: review.review_pair(
        pairs[7].pk, cat, version=0, action="accept").status)  # fmt: skip
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    step("an expired claim is taken over", lambda: claim(bob))
    step("nobody but reviewers claims", lambda: claim(nobody))

    # Two reviews per item: each expert decides blind, disagreement goes to adjudication.
    review.set_reviews_per_item(cur, 2)
    Claim.objects.all().delete()
    step("ann 2x", lambda: claim(ann))
    step("ann accepts 2x", lambda: decide(ann, trace[-1][1]))
    step("ann's next skips what she reviewed", lambda: claim(ann))
    step("bob gets ann's pair", lambda: claim(bob))
    step(
        "bob rejects: disputed",
        lambda: decide(bob, trace[-1][1], action="reject", reason="other", note="n"),
    )
    step("curator adjudicates", lambda: claim(cur, status=Pair.Status.DISPUTED))
    step("expert cannot adjudicate", lambda: claim(bob, status=Pair.Status.DISPUTED))
    step(
        "every pair's end state",
        lambda: sorted(
            [index[p.pk], p.status, p.version]
            for p in Pair.objects.filter(pk__in=index).only("status", "version")
        ),
    )
    return trace


def main() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    json.dump(run(), sys.stdout)


if __name__ == "__main__":
    main()
