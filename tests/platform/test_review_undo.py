"""Undo of an expert's own decision: a real revert, recorded, refused once anyone moved on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import Claim, Pair, Review, ReviewEvent
from curation.selectors.dashboard import agreement
from curation.services import review as svc
from curation.services.errors import Conflict, ServiceError
from tests.factories import make_book, make_pairs


@pytest.fixture
def book(db):
    return make_book()


@pytest.fixture
def experts(make_user):
    return make_user("ann", "expert"), make_user("bob", "expert"), make_user("cat", "curator")


def _fields(pair: Pair) -> dict:
    pair.refresh_from_db()
    return {**svc.snapshot(pair), "by": pair.reviewed_by_id, "at": pair.reviewed_at}


def test_undo_restores_values_status_and_drops_the_review(book, experts):
    ann = experts[0]
    pair = make_pairs(book, 1)[0]
    before = _fields(pair)
    decided = svc.review_pair(pair.pk, ann, version=1, action="reject", reason="bad_crop",
                              note="cut", changes={"diagnosis": "lupus"})  # fmt: skip
    assert Review.objects.filter(item_id=pair.pk).count() == 1
    out = svc.undo_decision(pair.pk, ann, event_id=decided.decision_event_id)
    assert _fields(out) == before  # values, status, reject reason/note, decider: all back
    assert out.version == 3  # the decision and the undo each moved it on
    assert not Review.objects.filter(item_id=pair.pk).exists()  # counts nowhere any more
    undo = ReviewEvent.objects.filter(target_id=pair.pk).latest("id")
    assert undo.action == svc.UNDONE and undo.actor == ann
    assert undo.before["status"] == "rejected" and undo.before["diagnosis"] == "lupus"
    assert undo.before["review"]["decision"] == "rejected"  # the removed review is kept here
    assert undo.after["status"] == "proposed" and undo.after["diagnosis"] == "psoriasis"
    # The expert gets the pair back, held, to decide again; the queue offers it to nobody else.
    assert svc.claim_of(pair.pk).user == ann
    again = svc.review_pair(pair.pk, ann, version=3, action="accept")
    assert again.status == "accepted"


def test_undo_of_a_changed_decision_restores_the_earlier_decision_and_its_decider(book, experts):
    ann, bob, _ = experts
    pair = make_pairs(book, 1)[0]
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    earlier = _fields(pair)
    over = svc.review_pair(pair.pk, bob, version=2, action="reject", reason="duplicate",
                           redecide=True)  # fmt: skip
    assert ReviewEvent.objects.get(pk=over.decision_event_id).action == svc.OVERRIDDEN
    svc.undo_decision(pair.pk, bob, event_id=over.decision_event_id)
    now = _fields(pair)
    assert {k: now[k] for k in now if k != "version"} == {
        k: earlier[k] for k in earlier if k != "version"
    }
    assert now["by"] == ann.pk and now["status"] == "accepted"
    assert list(Review.objects.filter(item_id=pair.pk).values_list("expert", flat=True)) == [ann.pk]


def test_undo_is_refused_once_someone_else_changed_the_pair(book, experts):
    ann, _, cat = experts
    pair = make_pairs(book, 1)[0]
    decided = svc.review_pair(pair.pk, ann, version=1, action="accept")
    svc.review_pair(pair.pk, cat, version=2, action="reject", reason="duplicate", redecide=True)
    with pytest.raises(Conflict) as refused:
        svc.undo_decision(pair.pk, ann, event_id=decided.decision_event_id)
    assert refused.value.status == 409 and "cat" in refused.value.message
    pair.refresh_from_db()
    assert pair.status == "rejected" and pair.reviewed_by == cat  # cat's decision stands
    assert not ReviewEvent.objects.filter(action=svc.UNDONE).exists()


def test_undo_only_of_ones_own_decision_and_only_within_the_window(
    book, experts, settings, monkeypatch
):
    ann, bob, _ = experts
    first, second = make_pairs(book, 2)
    decided = svc.review_pair(first.pk, ann, version=1, action="accept")
    with pytest.raises(ServiceError) as not_yours:
        svc.undo_decision(first.pk, bob, event_id=decided.decision_event_id)
    assert not_yours.value.status == 400
    proposed = ReviewEvent.objects.get(target_id=first.pk, action="pair.proposed")
    with pytest.raises(ServiceError):  # the machine's event is nobody's decision
        svc.undo_decision(first.pk, ann, event_id=proposed.pk)
    with pytest.raises(ServiceError):  # an event of another pair
        svc.undo_decision(second.pk, ann, event_id=decided.decision_event_id)

    settings.REVIEW_UNDO_SECONDS = 30
    later = timezone.now() + timedelta(seconds=31)
    monkeypatch.setattr(svc.timezone, "now", lambda: later)
    with pytest.raises(Conflict) as late:
        svc.undo_decision(first.pk, ann, event_id=decided.decision_event_id)
    assert late.value.code == "too_late"
    first.refresh_from_db()
    assert first.status == "accepted"


def test_undo_is_refused_while_someone_else_holds_the_pair(book, experts):
    ann, bob, cat = experts
    svc.set_reviews_per_item(cat, 2)
    pair = make_pairs(book, 1)[0]
    decided = svc.review_pair(pair.pk, ann, version=1, action="accept")  # 1 of 2, still open
    assert svc.claim_next_id(bob) == pair.pk  # bob now reviews it
    with pytest.raises(Conflict) as held:
        svc.undo_decision(pair.pk, ann, event_id=decided.decision_event_id)
    assert held.value.code == "claimed"
    assert Claim.objects.get(item_id=pair.pk).user == bob


def test_an_undone_blind_review_counts_toward_nothing(book, experts):
    """Two blind reviews disagree (disputed); the second expert undoes theirs: the pair waits
    for a second review again, and agreement counts no pair of reviews until a new one."""
    ann, bob, cat = experts
    svc.set_reviews_per_item(cat, 2)
    pair = make_pairs(book, 1)[0]
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    disputed = svc.review_pair(pair.pk, bob, version=2, action="reject", reason="duplicate")
    assert disputed.status == "disputed" and agreement()["expert_pairs"][0]["items"] == 1
    svc.undo_decision(pair.pk, bob, event_id=disputed.decision_event_id)
    pair.refresh_from_db()
    assert pair.status == "proposed"
    assert agreement()["expert_pairs"] == []  # the undone review is no rating
    assert svc.claim_of(pair.pk).user == bob
    final = svc.review_pair(pair.pk, bob, version=pair.version, action="accept")
    assert final.status == "accepted"  # bob's new review agrees: consensus, no dispute
    assert agreement()["expert_pairs"][0]["items"] == 1


def test_the_page_undoes_in_place_and_says_why_it_cannot(client, book, experts):
    ann = experts[0]
    pairs = make_pairs(book, 2)
    client.force_login(ann)
    url = client.get("/review/next/")["Location"]
    hx = {"HX-Request": "true"}
    response = client.post(url, {"action": "accept", "version": 1, "text": pairs[0].text},
                           headers=hx)  # fmt: skip
    html = response.content.decode()
    assert 'id="undo-btn"' in html and f"/review/pairs/{pairs[0].pk}/undo/" in html
    event = ReviewEvent.objects.filter(target_id=pairs[0].pk).latest("id")
    undone = client.post(f"/review/pairs/{pairs[0].pk}/undo/", {"event": event.pk}, headers=hx)
    assert undone.status_code == 200 and undone["HX-Push-Url"] == f"/review/pairs/{pairs[0].pk}/"
    assert "Decision undone" in undone.content.decode()
    pairs[0].refresh_from_db()
    assert pairs[0].status == "proposed"
    again = client.post(f"/review/pairs/{pairs[0].pk}/undo/", {"event": event.pk}, headers=hx)
    assert again.status_code == 409 and again["HX-Retarget"] == "#toast"
    assert "can no longer be undone" in again.content.decode()


def test_an_invalid_in_place_decision_comes_back_with_its_reason_and_the_typed_values(
    client, book, experts
):
    pair = make_pairs(book, 1)[0]
    client.force_login(experts[0])
    url = client.get("/review/next/")["Location"]
    form = {"action": "accept", "version": 1, "text": pair.text, "age": "140", "diagnosis": "x"}
    response = client.post(url, form, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 400 and "<html" not in html  # the part, swapped in place
    assert 'id="review-error"' in html and "between 0 and 120" in html
    assert 'value="140"' in html and "HX-Push-Url" not in response  # same pair, as typed
    pair.refresh_from_db()
    assert pair.status == "proposed" and pair.age == 40
