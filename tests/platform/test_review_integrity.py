"""Random review sequences through the service layer keep the data honest.

Two experts and a curator accept, edit, reject, write with a stale version (a conflict),
reapply with and without confirming, undo (a revert to the previous state) and revert to any
earlier state, in 200 seeded sequences. After every step:

- replaying the pair's events (each ``before`` must match the replayed state, a decision's
  ``before`` holds exactly the fields it changed, ``after`` gives the new state) ends at the
  row: no field changes without an event that says so;
- the row is what the test's own model of the rules expects (values, status, version), and a
  refused write leaves no event and no review behind;
- agreement (the dashboard's kappas) counts only independent decisions by different people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations

import pytest

from curation.agreement import Rating, accept_class, cohen_kappa, counted_ratings, fleiss_kappa
from curation.models import Figure, Pair, Panel, Review, ReviewEvent
from curation.selectors.dashboard import agreement
from curation.services import review as svc
from curation.services.audit import record_event
from curation.services.errors import Conflict
from tests.factories import make_book

SEQUENCES = 200
BLOCKS = 10  # sequences share a database (and the agreement tables) within a block
TEXTS = ["Fig. 1 Plaque psoriasis.", "Fig. 1 Plaques on the elbow.\nB: nail pitting.", "Scale."]
DIAGNOSES = ["", "psoriasis", "lichen planus", "Eczema"]
MODALITIES = ["clinical", "dermoscopic", "pathological", "other"]
FLAGS = ["face", "annotation_marks", "poor_quality", "not_dermatology"]
REASONS = ["duplicate", "bad_crop", "not_a_figure"]
DECIDED = {"accepted", "edited", "rejected"}
ACTIONS = ["accept", "edit", "reject", "conflict", "reapply", "undo", "revert"]
WEIGHTS = [4, 4, 2, 2, 2, 2, 2]


def _values(rng: random.Random) -> dict:
    """Field values as the service stores them (canonical)."""
    return {
        "text": rng.choice(TEXTS),
        "modality": rng.choice(MODALITIES),
        "diagnosis": rng.choice(DIAGNOSES),
        "age": rng.choice([None, 0, 7, 45, 120]),
        "sex": rng.choice([None, "female", "male"]),
        "flags": sorted(rng.sample(FLAGS, rng.randint(0, 2))),
    }


def _as_a_form_posts(rng: random.Random, values: dict, changed=()) -> dict:
    """The same values spelt as an HTML form or a sloppy client may send them."""
    out = dict(values)
    if "text" in values and rng.random() < 0.5:
        out["text"] = " " + values["text"].replace("\n", "\r\n") + "\r\n"
    if "diagnosis" in values and rng.random() < 0.5:
        out["diagnosis"] = values["diagnosis"] + " "
    if "age" in values and rng.random() < 0.7:
        out["age"] = "" if values["age"] is None else f" {values['age']}"
    if "sex" in values and rng.random() < 0.7 and values["sex"] is None:
        out["sex"] = ""
    if "flags" in values:
        flags = list(values["flags"]) * rng.choice([1, 2])
        rng.shuffle(flags)
        out["flags"] = flags
    if "modality" in values and rng.random() < 0.3 and "modality" not in changed:
        del out["modality"]  # a client that only sends what it shows
    return out


def _make_pair(book, proposal: dict) -> Pair:
    page = book.pages.first()
    label = f"{Figure.objects.count()}.1"
    figure = Figure.objects.create(textbook=book, page=page, label=label, bbox=[0, 0, 9, 9],
                                   caption=proposal["text"], image="crops/f.png")  # fmt: skip
    panel = Panel.objects.create(figure=figure, index=0, bbox=[0, 0, 9, 9], image="crops/p.png")
    pair = Pair.objects.create(panel=panel, textbook=book, proposed=dict(proposal), **proposal)
    record_event(None, pair, "pair.proposed", after=dict(proposal))
    return pair


@dataclass
class Model:
    """What the rules say the pair should be; the database is checked against it."""

    pair_id: int
    proposal: dict
    state: dict
    version: int = 1
    decider: object = None  # who made the decision in force (None while undecided)
    states: list = field(default_factory=list)  # (event id, state) a revert can go back to
    pending: dict = field(default_factory=dict)  # user -> a write refused as stale, to reapply

    @property
    def decided(self) -> bool:
        return self.state["status"] in DECIDED


def _replay(pair: Pair) -> dict:
    """The pair's state by its events alone, checking each event's before against it."""
    state: dict = {}
    for event in ReviewEvent.objects.filter(target_type="pair", target_id=pair.pk).order_by("id"):
        if event.action == "pair.proposed":
            state = {"status": "proposed", "reject_reason": "", "reject_note": ""}
            state.update({k: event.after[k] for k in svc.EDITABLE})
            continue
        before = {k: v for k, v in (event.before or {}).items() if k in svc.SNAPSHOT}
        assert all(state[k] == v for k, v in before.items()), (event.action, before, state)
        if not event.after:
            assert not before, event.action  # an event without a state changed nothing
            continue
        new = {**state, **{k: v for k, v in event.after.items() if k in svc.SNAPSHOT}}
        changed = {k for k in svc.SNAPSHOT if new[k] != state[k]}
        if event.action == svc.REVERTED:
            assert changed <= set(before), event.action
        else:  # a decision names exactly the fields it changed
            assert set(before) == changed, (event.action, before, changed)
        state = new
    return state


def _expected_agreement(ratings: list[Rating], names: dict) -> dict:
    counted = counted_ratings(ratings)
    experts = sorted({e for by in counted.values() for e in by})
    pairs = []
    for a, b in combinations(experts, 2):
        shared = [by for by in counted.values() if a in by and b in by]
        if shared:
            pairs.append({
                "experts": f"{names[a]} / {names[b]}",
                "items": len(shared),
                "kappa_decision": cohen_kappa([accept_class(by[a].decision) for by in shared],
                                              [accept_class(by[b].decision) for by in shared]),
                "kappa_modality": cohen_kappa([by[a].modality for by in shared],
                                              [by[b].modality for by in shared]),
            })  # fmt: skip
    books = []
    if counted:
        raters = min(len(by) for by in counted.values())
        kept = [list(by.values())[:raters] for by in counted.values()]
        books.append({
            "items": len(kept), "raters": raters,
            "kappa_decision": fleiss_kappa([[accept_class(r.decision) for r in k] for k in kept]),
            "kappa_modality": fleiss_kappa([[r.modality for r in k] for k in kept]),
        })  # fmt: skip
    return {"expert_pairs": pairs, "books": books}


def _same_agreement(got: dict, want: dict) -> None:
    assert len(got["expert_pairs"]) == len(want["expert_pairs"]), (got, want)
    for mine, theirs in zip(got["expert_pairs"], want["expert_pairs"], strict=True):
        assert mine["experts"] == theirs["experts"] and mine["items"] == theirs["items"]
        for key in ("kappa_decision", "kappa_modality"):
            assert mine[key] == pytest.approx(theirs[key]), (key, mine, theirs)
    assert len(got["books"]) == len(want["books"]), (got, want)
    for mine, theirs in zip(got["books"], want["books"], strict=True):
        assert (mine["items"], mine["raters"]) == (theirs["items"], theirs["raters"])
        for key in ("kappa_decision", "kappa_modality"):
            assert mine[key] == pytest.approx(theirs[key]), (key, mine, theirs)


class Run:
    """One block of sequences: the people, the pairs' models and the ratings so far."""

    def __init__(self, make_user) -> None:
        self.ann, self.bob = make_user("ann", "expert"), make_user("bob", "expert")
        self.cur = make_user("cur", "curator")
        self.people = [self.ann, self.bob, self.cur]
        self.names = {u.pk: u.username for u in self.people}
        self.book = make_book(pages=1)
        self.ratings: list[Rating] = []

    # -- decisions ------------------------------------------------------------------------
    def decide(self, rng, m: Model, user, action: str, *, version: int, changes: dict,
               wanted: dict, reason: str = "", redecide: bool) -> None:  # fmt: skip
        """One write of a decision and what the rules expect of it."""
        stale = version != m.version
        refused_as_decided = not stale and m.decided and not redecide
        try:
            svc.review_pair(m.pair_id, user, version=version, action=action, changes=changes,
                            reason=reason, redecide=redecide)  # fmt: skip
        except Conflict as exc:
            expected = "stale" if stale else "decided" if refused_as_decided else "no conflict"
            assert exc.code == expected, (exc.code, exc.message)
            if exc.code == "decided":
                assert self.names[m.decider.pk] in exc.message  # it names who decided
                assert exc.extra["decided"]["by"] == m.decider.username
            if exc.code == "stale":
                m.pending[user.pk] = (action, changes, wanted, reason, exc.extra["version"])
            return
        assert not stale and not refused_as_decided, "the write should have been refused"
        independent = not m.decided
        overriding = m.decided and m.decider.pk != user.pk
        if action == "reject":
            status = "rejected"
            new = {**m.state, "status": status, "reject_reason": reason, "reject_note": ""}
        else:
            values = {**{k: m.state[k] for k in svc.EDITABLE}, **wanted}
            status = "accepted" if values == m.proposal else "edited"
            new = {**m.state, **values, "status": status, "reject_reason": "", "reject_note": ""}
        m.state, m.version, m.decider = new, m.version + 1, user
        event = ReviewEvent.objects.filter(target_type="pair", target_id=m.pair_id).latest("id")
        assert event.action == (svc.OVERRIDDEN if overriding else svc.decision_event(status))
        review = Review.objects.filter(item_id=m.pair_id).latest("id")
        assert (review.expert_id, review.decision, review.independent) == (
            user.pk, status, independent)  # fmt: skip
        m.states.append((event.pk, dict(new)))
        self.ratings.append(
            Rating(m.pair_id, user.pk, status, m.state["modality"], independent=independent)
        )

    def revert(self, m: Model, index: int) -> None:
        event_id, state = m.states[index]
        if state == m.state:  # a revert that would change nothing is refused, and leaves no trace
            with pytest.raises(Conflict) as refused:
                svc.revert_pair(m.pair_id, self.cur, event_id=event_id, version=m.version)
            assert refused.value.code == "no_change"
            return
        svc.revert_pair(m.pair_id, self.cur, event_id=event_id, version=m.version)
        m.state, m.version = dict(state), m.version + 1
        m.decider = self.cur if m.decided else None  # the curator put that decision back
        event = ReviewEvent.objects.filter(target_type="pair", target_id=m.pair_id).latest("id")
        assert event.action == svc.REVERTED
        m.states.append((event.pk, dict(state)))

    # -- one random step ------------------------------------------------------------------
    def step(self, rng: random.Random, m: Model) -> str:
        kind = rng.choices(ACTIONS, WEIGHTS)[0]
        user = rng.choice(self.people)
        # On a decided pair the reviewer presses "change decision" (redecide) or not.
        redecide = m.decided and rng.random() < 0.6
        current = {k: m.state[k] for k in svc.EDITABLE}
        if kind == "accept":
            self.decide(rng, m, user, "accept", version=m.version, redecide=redecide,
                        changes=_as_a_form_posts(rng, current), wanted={})  # fmt: skip
        elif kind == "edit":
            wanted = {k: v for k, v in _values(rng).items() if rng.random() < 0.4}
            posted = _as_a_form_posts(rng, {**current, **wanted}, wanted)
            self.decide(rng, m, user, "accept", version=m.version, redecide=redecide,
                        changes=posted, wanted=wanted)  # fmt: skip
        elif kind == "reject":
            self.decide(rng, m, user, "reject", version=m.version, redecide=redecide,
                        changes={}, wanted={}, reason=rng.choice(REASONS))  # fmt: skip
        elif kind == "conflict":  # a write from a page opened before the latest change
            wanted = {k: v for k, v in _values(rng).items() if rng.random() < 0.4}
            old = rng.randint(1, m.version - 1) if m.version > 1 else m.version + 1
            # The review page sends what the expert changed on it (see the view's test), so
            # reapplying never undoes what others changed meanwhile in the other fields.
            posted = _as_a_form_posts(rng, wanted, wanted)
            self.decide(rng, m, user, "accept", version=old, redecide=redecide,
                        changes=posted, wanted=wanted)  # fmt: skip
        elif kind == "reapply":
            if not m.pending:
                return "reapply (nothing pending)"
            waiting = rng.choice(sorted(m.pending))
            user = next(u for u in self.people if u.pk == waiting)
            action, changes, wanted, reason, version = m.pending.pop(user.pk)
            confirmed = rng.random() < 0.5  # the conflict page's "replace their decision" box
            self.decide(rng, m, user, action, version=version, changes=changes, wanted=wanted,
                        reason=reason, redecide=confirmed)  # fmt: skip
            kind = f"reapply ({'confirmed' if confirmed else 'unconfirmed'})"
        elif kind == "undo":
            if len(m.states) < 2:
                return "undo (nothing to undo)"
            self.revert(m, -2)
        else:
            self.revert(m, rng.randrange(len(m.states)))
        return kind

    def check(self, m: Model, what: str) -> None:
        pair = Pair.objects.get(pk=m.pair_id)
        row = svc.snapshot(pair)
        assert row == m.state, what
        assert pair.version == m.version, what
        assert _replay(pair) == row, what
        assert (svc.decided_by(pair) or {}).get("by_id") == (m.decider.pk if m.decider else None)


@pytest.mark.parametrize("block", range(BLOCKS))
def test_random_review_sequences_keep_the_history_and_agreement_honest(block, db, make_user):
    run = Run(make_user)
    per_block = SEQUENCES // BLOCKS
    for seed in range(block * per_block, (block + 1) * per_block):
        rng = random.Random(seed)
        models = []
        for _ in range(rng.randint(1, 3)):
            proposal = _values(rng)
            pair = _make_pair(run.book, proposal)
            first = ReviewEvent.objects.get(target_id=pair.pk, action="pair.proposed")
            state = {**proposal, "status": "proposed", "reject_reason": "", "reject_note": ""}
            models.append(Model(pair.pk, proposal, state, states=[(first.pk, dict(state))]))
        for number in range(rng.randint(6, 18)):
            m = rng.choice(models)
            events = ReviewEvent.objects.filter(target_type="pair", target_id=m.pair_id).count()
            reviews = Review.objects.filter(item_id=m.pair_id).count()
            version = m.version
            what = f"seed {seed} step {number}: {run.step(rng, m)}"
            if m.version == version:  # refused or nothing to do: nothing was written
                assert (
                    ReviewEvent.objects.filter(target_type="pair", target_id=m.pair_id).count()
                    == events
                ), what
                assert Review.objects.filter(item_id=m.pair_id).count() == reviews, what
            run.check(m, what)
        _same_agreement(agreement(), _expected_agreement(run.ratings, run.names))
    # The sequences did reach the cases this is about.
    actions = set(ReviewEvent.objects.values_list("action", flat=True))
    assert {svc.OVERRIDDEN, svc.REVERTED, "pair.accepted", "pair.edited"} <= actions
    assert Review.objects.filter(independent=False).exists()
    assert agreement()["expert_pairs"]
