"""Blind review: while a pair awaits independent reviews, an expert who has not given theirs
sees none of the other reviewers' decisions or events, on any surface (history API, review
page, conflict payload and page). Once they decide, or the round ends, they see it all."""

import re

import pytest

from curation.models import Pair
from curation.services import review as svc
from tests.factories import make_book, make_pairs

SECRET = "first-reviewer-secret-diagnosis"


@pytest.fixture
def blind(db, make_user, api_client_for):
    """Two reviews per item; ``first`` has reviewed the pair (with edits), ``second`` has not."""
    curator = api_client_for("curator", username="the_curator")
    svc.set_reviews_per_item(curator.user, 2)
    first = api_client_for("expert", username="first_reviewer")
    second = api_client_for("expert", username="second_reviewer")
    for client in (first, second, curator):
        client.force_login(client.user)  # the HTML pages use the session
    pair = make_pairs(make_book(), 1)[0]
    svc.review_pair(pair.pk, first.user, version=1, action="accept",
                    changes={"diagnosis": SECRET, "age": 41})  # fmt: skip
    pair.refresh_from_db()
    return pair, first, second, curator


def _actors(client, pair) -> list[str | None]:
    response = client.get(f"/api/pairs/{pair.pk}/history/")
    assert response.status_code == 200
    return [e["actor"] for e in response.json()]


def _form(pair, version: int) -> dict:
    return {"action": "accept", "version": version, "text": pair.text, "modality": "clinical",
            "diagnosis": "psoriasis", "age": "40", "sex": "male"}  # fmt: skip


def test_history_api_hides_the_first_review_until_the_second_expert_decides(blind):
    pair, first, second, curator = blind
    body = second.get(f"/api/pairs/{pair.pk}/history/").content.decode()
    assert SECRET not in body and "first_reviewer" not in body
    assert _actors(second, pair) == [None]  # the machine's proposal only
    assert _actors(first, pair) == [None, "first_reviewer"]  # their own decision
    assert _actors(curator, pair) == [None, "first_reviewer"]  # curators see everything
    svc.review_pair(pair.pk, second.user, version=pair.version, action="accept")
    assert _actors(second, pair) == [None, "first_reviewer", "second_reviewer"]


def test_an_expert_who_decided_sees_the_history_while_the_round_goes_on(blind, api_client_for):
    pair, _, second, curator = blind
    svc.set_reviews_per_item(curator.user, 3)
    third = api_client_for("expert", username="third_reviewer")
    assert _actors(second, pair) == [None]
    svc.review_pair(pair.pk, second.user, version=pair.version, action="accept")
    assert Pair.objects.get(pk=pair.pk).status == Pair.Status.PROPOSED  # 2 of 3
    assert _actors(second, pair) == [None, "first_reviewer", "second_reviewer"]
    assert _actors(third, pair) == [None]


def test_review_page_shows_the_machine_proposal_and_no_other_decision(blind):
    pair, _, second, curator = blind
    html = second.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert SECRET not in html and "first_reviewer" not in html
    # the machine's values, not theirs
    assert re.search(r'id="id_diagnosis"[^>]* value="psoriasis"', html)
    assert re.search(r'id="id_age"[^>]* value="40"', html)
    assert 'id="blind-note"' in html
    staff = curator.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert "first_reviewer" in staff and 'id="blind-note"' not in staff
    second.post(f"/review/pairs/{pair.pk}/", _form(pair, pair.version))
    assert Pair.objects.get(pk=pair.pk).status != Pair.Status.PROPOSED  # the round is over
    after = second.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert "first_reviewer" in after and 'id="blind-note"' not in after


def test_conflict_payload_and_page_show_no_other_decision(blind):
    pair, _, second, _ = blind
    stale = second.post(f"/api/pairs/{pair.pk}/review/", {"version": 1, "action": "accept"},
                        format="json")  # fmt: skip
    assert stale.status_code == 409 and stale.json()["code"] == "stale"
    payload = stale.json()
    assert SECRET not in stale.content.decode() and "first_reviewer" not in stale.content.decode()
    assert [e["actor__username"] for e in payload["recent"]] == [None]
    assert payload["current"]["diagnosis"] == "psoriasis"  # the pair row holds no blind review
    page = second.post(f"/review/pairs/{pair.pk}/", _form(pair, 1))
    assert page.status_code == 409
    html = page.content.decode()
    assert SECRET not in html and "first_reviewer" not in html
    assert 'id="blind-note"' in html
    assert f'name="version" value="{pair.version}"' in html  # reapplying still works


def test_a_revert_starts_a_new_blind_round(blind):
    pair, first, second, curator = blind
    svc.review_pair(pair.pk, second.user, version=pair.version, action="reject",
                    reason="bad_crop")  # fmt: skip
    pair.refresh_from_db()
    assert pair.status == Pair.Status.DISPUTED
    proposal = svc.history(pair.pk)[0]
    svc.revert_pair(pair.pk, curator.user, event_id=proposal.pk, version=pair.version)
    # Round two: nobody has reviewed again, so each sees only the machine and themselves.
    assert _actors(first, pair) == [None, "first_reviewer"]
    assert _actors(second, pair) == [None, "second_reviewer"]
