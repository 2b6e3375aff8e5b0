"""Review services: leases, decisions with versions, skips, reverts."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from curation.models import Claim, Pair, Review, ReviewEvent
from curation.services import review as svc
from curation.services.errors import Conflict, NotAllowed, ServiceError
from tests.factories import make_book, make_pairs


@pytest.fixture
def book(db):
    return make_book()


@pytest.fixture
def experts(make_user):
    return make_user("ann", "expert"), make_user("bob", "expert")


def test_next_gives_the_oldest_and_two_experts_never_share(book, experts):
    pairs = make_pairs(book, 3)
    ann, bob = experts
    assert svc.claim_next(ann) == pairs[0]
    assert svc.claim_next(bob) == pairs[1]
    assert svc.claim_next(ann) == pairs[0]  # a reload gives the same item back
    assert Claim.objects.count() == 2


def test_filters_restrict_the_queue(book, experts):
    other = make_book("Other")
    make_pairs(book, 2)
    derm = make_pairs(other, 1, modality="dermoscopic")[0]
    ann, _ = experts
    assert svc.claim_next(ann, svc.QueueFilter(textbook_id=other.pk)) == derm
    svc.release_claim(ann, derm.pk)
    assert svc.claim_next(ann, svc.QueueFilter(modality="dermoscopic")) == derm
    assert svc.claim_next(ann, svc.QueueFilter(modality="pathological")) is None


def test_expired_claims_return_to_the_queue_without_a_sweep(book, experts):
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    assert svc.claim_next(ann) == pair
    assert svc.claim_next(bob) is None
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert svc.claim_next(bob) == pair
    assert Claim.objects.get().user == bob
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert svc.expire_claims() == 1 and not Claim.objects.exists()


def test_skipped_pairs_are_not_offered_again_to_the_same_expert(book, experts):
    first, second = make_pairs(book, 2)
    ann, bob = experts
    assert svc.claim_next(ann) == first
    svc.skip_pair(first.pk, ann)
    assert svc.claim_next(ann) == second
    assert svc.claim_next(bob) == first
    assert ReviewEvent.objects.filter(action="pair.skipped", actor=ann).count() == 1


def test_accept_as_proposed_then_edit(book, experts):
    first, second = make_pairs(book, 2)
    ann, _ = experts
    svc.claim_next(ann)
    done = svc.review_pair(first.pk, ann, version=1, action="accept")
    assert done.status == "accepted" and done.version == 2 and done.reviewed_by == ann
    assert not Claim.objects.filter(item_id=first.pk).exists()
    review = Review.objects.get(item_id=first.pk)
    assert review.decision == "accepted" and review.seconds is not None
    event = ReviewEvent.objects.get(target_id=first.pk, action="pair.accepted")
    assert event.before["status"] == "proposed" and event.after["status"] == "accepted"

    edited = svc.review_pair(
        second.pk, ann, version=1, action="accept",
        changes={"modality": "dermoscopic", "age": "41", "flags": ["face"]},
    )  # fmt: skip
    assert edited.status == "edited" and edited.age == 41 and edited.flags == ["face"]
    assert edited.proposed["modality"] == "clinical"  # the machine's values stay beside


def test_stale_version_is_a_conflict_and_changes_nothing(book, experts):
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept", changes={"text": "Ann's text"})
    with pytest.raises(Conflict) as err:
        svc.review_pair(pair.pk, bob, version=1, action="accept", changes={"text": "Bob's"})
    assert err.value.code == "stale" and err.value.status == 409
    assert err.value.extra["current"]["text"] == "Ann's text"
    assert err.value.extra["version"] == 2
    pair.refresh_from_db()
    assert pair.text == "Ann's text" and pair.version == 2


def test_another_experts_live_claim_blocks_writes(book, experts):
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.claim_next(ann)
    with pytest.raises(Conflict) as err:
        svc.review_pair(pair.pk, bob, version=1, action="accept")
    assert err.value.code == "claimed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "reject"}, "reason"),
        ({"action": "reject", "reason": "other"}, "Explain"),
        ({"action": "accept", "changes": {"modality": "mixed"}}, "modality"),
        ({"action": "accept", "changes": {"age": 200}}, "age"),
        ({"action": "accept", "changes": {"owner": "x"}}, "Unknown"),
        ({"action": "accept", "changes": {"flags": ["sparkly"]}}, "flags"),
        ({"action": "accept", "changes": {"text": "  "}}, "caption"),
        ({"action": "delete"}, "action"),
    ],
)
def test_invalid_decisions_are_refused(book, experts, kwargs, message):
    pair = make_pairs(book, 1)[0]
    with pytest.raises(ServiceError, match=message):
        svc.review_pair(pair.pk, experts[0], version=1, **kwargs)
    pair.refresh_from_db()
    assert pair.status == "proposed" and pair.version == 1


def test_reject_with_reason(book, experts):
    pair = make_pairs(book, 1)[0]
    out = svc.review_pair(pair.pk, experts[0], version=1, action="reject", reason="bad_crop")
    assert out.status == "rejected" and out.reject_reason == "bad_crop"


def test_revert_is_a_new_event_and_needs_a_curator(book, experts, make_user):
    pair = make_pairs(book, 1)[0]
    ann, _ = experts
    svc.review_pair(pair.pk, ann, version=1, action="reject", reason="duplicate")
    proposed_event = ReviewEvent.objects.get(target_id=pair.pk, action="pair.proposed")
    with pytest.raises(NotAllowed):
        svc.revert_pair(pair.pk, ann, event_id=proposed_event.pk, version=2)
    curator = make_user("cur", "curator")
    out = svc.revert_pair(pair.pk, curator, event_id=proposed_event.pk, version=2)
    assert out.status == "proposed" and out.reject_reason == "" and out.version == 3
    actions = [e.action for e in svc.history(pair.pk)]
    assert actions == ["pair.proposed", "pair.rejected", "pair.reverted"]


def test_people_without_a_review_role_cannot_review(book, make_user):
    pair = make_pairs(book, 1)[0]
    worker = make_user("gpu", "ml_worker")
    with pytest.raises(NotAllowed):
        svc.claim_next(worker)
    with pytest.raises(NotAllowed):
        svc.review_pair(pair.pk, worker, version=1, action="accept")


@pytest.mark.django_db(transaction=True)
def test_concurrent_pickers_never_get_the_same_pair(make_user):
    book = make_book()
    make_pairs(book, 12)
    users = [make_user(f"e{i}", "expert") for i in range(6)]
    got: dict[str, list[int]] = {}
    errors = []

    def work(user):
        try:
            mine = []
            for _ in range(2):
                pair = svc.claim_next(user)
                if pair is None:
                    break
                mine.append(pair.pk)
                svc.review_pair(pair.pk, user, version=pair.version, action="accept")
            got[user.username] = mine
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    claimed = [pk for pks in got.values() for pk in pks]
    assert len(claimed) == len(set(claimed)) == 12
    assert Pair.objects.filter(status="accepted").count() == 12
    assert Review.objects.count() == 12


def test_beat_task_expires_claims(book, experts, eager_celery):
    from workers.maintenance import expire_claims

    make_pairs(book, 1)
    svc.claim_next(experts[0])
    assert expire_claims.delay().get() == 0
    Claim.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_claims.delay().get() == 1


# --- values stay as they were unless the expert changes them --------------------------------


def _proposed_pair(book, **proposal):
    """A pair whose proposal looks like the extractor's: unknowns as None, flags unordered."""
    pair = make_pairs(book, 1)[0]
    values = {"text": pair.text, "modality": "clinical", "diagnosis": "psoriasis", "age": 40,
              "sex": "female", "flags": []} | proposal  # fmt: skip
    Pair.objects.filter(pk=pair.pk).update(
        proposed={**values, "modality_confidence": 0.8},
        **{k: v for k, v in values.items() if k != "flags"},
        flags=sorted(values["flags"]),
    )  # fmt: skip
    pair.refresh_from_db()
    return pair


FORM_SPELLINGS = [
    # what an HTML form posts for the same values: strings, CRLF line ends, no order
    pytest.param({}, {}, id="nothing-posted"),
    pytest.param({"sex": "female"}, {}, id="extractor-sex"),
    pytest.param(
        {"age": None, "sex": None, "diagnosis": ""},
        {"age": "", "sex": "", "diagnosis": "  "},
        id="unknowns-as-empty-strings",
    ),
    pytest.param({"age": 7}, {"age": "7"}, id="age-as-text"),
    pytest.param({"age": 0}, {"age": " 0 "}, id="age-zero-with-spaces"),
    pytest.param(
        {"text": "Fig. 1 Plaques.\nB: nails."},
        {"text": "  Fig. 1 Plaques.\r\nB: nails.\r\n"},
        id="textarea-crlf",
    ),
    pytest.param({"text": "Fig. 1 Plaques.  "}, {"text": "Fig. 1 Plaques."}, id="stored-spaces"),
    pytest.param(
        {"flags": ["poor_quality", "face"]},
        {"flags": ["poor_quality", "face", "face"]},
        id="flags-order-and-repeats",
    ),
    pytest.param({"diagnosis": "Psoriasis"}, {"diagnosis": "Psoriasis "}, id="diagnosis-space"),
]


@pytest.mark.parametrize(("proposal", "posted"), FORM_SPELLINGS)
def test_accept_with_no_change_keeps_every_proposed_value(book, experts, proposal, posted):
    pair = _proposed_pair(book, **proposal)
    stored = svc.snapshot(pair)
    form = {field: stored[field] for field in svc.EDITABLE} | posted
    out = svc.review_pair(pair.pk, experts[0], version=1, action="accept", changes=form)
    assert out.status == "accepted"
    out.refresh_from_db()
    assert {f: getattr(out, f) for f in svc.EDITABLE} == {f: stored[f] for f in svc.EDITABLE}
    event = ReviewEvent.objects.get(target_id=pair.pk, action="pair.accepted")
    assert event.before == {"status": "proposed"}  # nothing but the status changed
    assert Review.objects.get(item_id=pair.pk).decision == "accepted"


def test_an_edit_records_only_the_fields_that_changed(book, experts):
    pair = _proposed_pair(book, age=None, sex=None)
    form = {"text": pair.text + "\r\n", "diagnosis": "Lichen planus", "age": "", "sex": "",
            "flags": [], "modality": "clinical"}  # fmt: skip
    out = svc.review_pair(pair.pk, experts[0], version=1, action="accept", changes=form)
    assert out.status == "edited" and out.diagnosis == "Lichen planus" and out.text == pair.text
    event = ReviewEvent.objects.get(target_id=pair.pk, action="pair.edited")
    assert event.before == {"status": "proposed", "diagnosis": "psoriasis"}
    assert event.after == svc.snapshot(out)  # the whole state after: a revert target


def test_the_sex_contract_is_female_male_or_null(book, experts):
    from django.db import IntegrityError, transaction

    pair = _proposed_pair(book, sex=None)
    for wrong in ("F", "M", "woman"):
        with pytest.raises(ServiceError, match="sex"):
            svc.review_pair(pair.pk, experts[0], version=1, action="accept",
                            changes={"sex": wrong})  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Pair.objects.filter(pk=pair.pk).update(sex="F")
    out = svc.review_pair(pair.pk, experts[0], version=1, action="accept", changes={"sex": ""})
    assert out.sex is None and out.status == "accepted"


# --- decisions are protected ------------------------------------------------------------------


def test_a_decided_pair_is_changed_only_on_purpose(book, experts):
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    for user in (ann, bob):
        with pytest.raises(Conflict) as err:
            svc.review_pair(pair.pk, user, version=2, action="reject", reason="duplicate")
        assert err.value.code == "decided" and err.value.status == 409
        assert "ann decided this pair (accepted)" in err.value.message
        assert err.value.extra["decided"]["by"] == "ann"
        assert err.value.extra["decided"]["at"] and err.value.extra["version"] == 2
    pair.refresh_from_db()
    assert pair.status == "accepted" and pair.version == 2
    assert Review.objects.filter(item_id=pair.pk).count() == 1


def test_replacing_anothers_decision_is_an_override_that_agreement_ignores(book, experts):
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    out = svc.review_pair(pair.pk, bob, version=2, action="reject", reason="duplicate",
                          redecide=True)  # fmt: skip
    assert out.status == "rejected" and out.reviewed_by == bob
    event = ReviewEvent.objects.filter(target_id=pair.pk).latest("id")
    assert event.action == svc.OVERRIDDEN and "ann" in event.note and "accepted" in event.note
    assert event.before == {"status": "accepted", "reject_reason": ""}
    again = svc.review_pair(pair.pk, bob, version=3, action="accept", redecide=True)
    own = ReviewEvent.objects.filter(target_id=pair.pk).latest("id")
    assert again.status == "accepted" and own.action == "pair.accepted"
    assert "own decision" in own.note
    assert [(r.expert, r.independent) for r in svc.reviews_of(pair.pk)] == [
        (ann, True), (bob, False), (bob, False)
    ]  # fmt: skip

    from curation.selectors.dashboard import agreement

    assert agreement() == {"expert_pairs": [], "books": []}  # one independent decision only


def test_an_adjudicated_decision_is_changed_only_by_an_adjudicator(book, experts, make_user):
    curator = make_user("cur", "curator")
    svc.set_reviews_per_item(curator, 2)
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    svc.review_pair(pair.pk, bob, version=2, action="reject", reason="bad_crop")
    svc.review_pair(pair.pk, curator, version=3, action="accept")
    with pytest.raises(NotAllowed):
        svc.review_pair(pair.pk, ann, version=4, action="reject", reason="bad_crop",
                        redecide=True)  # fmt: skip
    out = svc.review_pair(pair.pk, curator, version=4, action="reject", reason="bad_crop",
                          redecide=True)  # fmt: skip
    assert out.status == "rejected"


def test_blind_reviews_record_the_pairs_state_and_the_reviewers_values(book, experts, make_user):
    svc.set_reviews_per_item(make_user("cur", "curator"), 2)
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept", changes={"age": 41})
    first = ReviewEvent.objects.get(target_id=pair.pk, action=svc.REVIEWED)
    assert first.before == {} and first.after["status"] == "proposed" and first.after["age"] == 40
    assert first.after["review"]["age"] == 41 and first.after["review"]["decision"] == "edited"
    svc.review_pair(pair.pk, bob, version=2, action="reject", reason="bad_crop")
    disputed = ReviewEvent.objects.get(target_id=pair.pk, action=svc.DISPUTED)
    assert disputed.before == {"status": "proposed"} and disputed.after["status"] == "disputed"


def test_re_deciding_queues_drafting_again_only_for_a_new_text(
    book, experts, settings, monkeypatch
):
    from curation.services import dispatch

    settings.DRAFT_ON_ACCEPT = True
    queued = []
    monkeypatch.setattr(dispatch, "enqueue_drafting", queued.append)
    pair = make_pairs(book, 1)[0]
    ann, bob = experts
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    assert len(queued) == 1
    svc.review_pair(pair.pk, bob, version=2, action="accept", redecide=True,
                    changes={"diagnosis": "eczema"})  # fmt: skip
    svc.review_pair(pair.pk, bob, version=3, action="reject", reason="duplicate", redecide=True)
    svc.review_pair(pair.pk, ann, version=4, action="accept", redecide=True)  # the first text
    assert len(queued) == 1
    svc.review_pair(pair.pk, ann, version=5, action="accept", redecide=True,
                    changes={"text": "A better caption."})  # fmt: skip
    assert len(queued) == 2
    svc.review_pair(
        pair.pk, ann, version=6, action="accept", redecide=True, changes={"text": pair.text}
    )  # back to a text drafted before
    assert len(queued) == 2


# --- claims come only from Review / next --------------------------------------------------------


def test_renewing_never_creates_a_claim(book, experts):
    first = make_pairs(book, 1)[0]
    ann, bob = experts
    with pytest.raises(Conflict) as err:
        svc.renew_claim(ann, first.pk)
    assert err.value.code == "not_claimed" and not Claim.objects.exists()
    assert svc.claim_next(ann) == first
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert svc.renew_claim(ann, first.pk).expires_at > timezone.now()  # its own page, lapsed
    with pytest.raises(Conflict) as err:
        svc.renew_claim(bob, first.pk)
    assert err.value.code == "claimed"


def test_an_unclaimed_pair_opened_by_its_url_can_be_decided(book, experts):
    pair = make_pairs(book, 1)[0]
    out = svc.review_pair(pair.pk, experts[0], version=1, action="accept")
    assert out.status == "accepted" and Review.objects.get().seconds is None
