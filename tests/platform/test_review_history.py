"""The pair's history on the review page: names, local times, field diffs, and "revert to
this" only where it would change something (a revert that would not is refused, 409)."""

import re

import pytest
from django.db import transaction

from curation.models import Pair, ReviewEvent
from curation.selectors.history import pair_history
from curation.selectors.review import review_context
from curation.services import review as svc
from curation.services.audit import record_event
from curation.services.errors import Conflict, ServiceError
from tests.factories import make_book, make_pairs


@pytest.fixture
def story(make_user, db):
    """Proposed → vqa.drafted → skipped → edited by Ann Smith (diagnosis and sex)."""
    pair = make_pairs(make_book(), 1)[0]
    ann = make_user("ann", "expert")
    ann.first_name, ann.last_name = "Ann", "Smith"
    ann.save()
    record_event(None, pair, "vqa.drafted", after={"items": [], "tokens": 0, "cost": 0})
    svc.skip_pair(pair.pk, make_user("bob", "expert"))
    svc.review_pair(pair.pk, ann, version=1, action="accept",
                    changes={"diagnosis": "guttate psoriasis", "sex": "female"})  # fmt: skip
    curator = make_user("cat", "curator")
    return pair, ann, curator


def _rows(html: str) -> dict[str, str]:
    """Each timeline row's HTML by its action."""
    return dict(
        re.findall(r'<li data-action="([^"]+)" data-event="\d+">(.*?)\n    </li>', html, re.S)
    )


def test_rows_name_people_show_times_and_the_fields_that_changed(client, story):
    pair, _, curator = story
    client.force_login(curator)
    html = client.get(f"/review/pairs/{pair.pk}/").content.decode()
    rows = _rows(html)
    edited = rows["pair.edited"]
    assert "Ann Smith" in edited  # the full name, not the username
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00" class="localtime">'
                     r"\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>", edited)  # fmt: skip
    assert "<dt>diagnosis</dt><dd><ins>guttate </ins>psoriasis</dd>" in edited
    assert "<dt>sex</dt><dd><del>male</del><ins>female</ins></dd>" in edited
    assert "<dt>caption</dt>" not in edited  # unchanged fields are not listed
    assert "bob" in rows["pair.skipped"] and "machine" in rows["pair.proposed"]
    assert "curation/localtime.js" in html and "curation/history.js" in html


def test_revert_is_offered_only_where_it_would_change_something(client, story):
    pair, _, curator = story
    client.force_login(curator)
    rows = _rows(client.get(f"/review/pairs/{pair.pk}/").content.decode())
    offered = {action for action, row in rows.items() if 'class="revert"' in row}
    # Not on the drafting, the skip, or the decision in force; on the proposal it replaced.
    assert offered == {"pair.proposed"}
    proposed = rows["pair.proposed"]
    assert '<dialog id="revert-' in proposed and 'class="confirm-revert"' in proposed
    # Without script the button still opens it (a popover) and Cancel closes it.
    assert re.search(r'popovertarget="(revert-\d+)"[^>]*>Revert to this', proposed)
    assert "popover aria-labelledby" in proposed and 'popovertargetaction="hide"' in proposed
    # The dialog says what the revert changes: from the values now back to the proposal.
    assert "<dt>diagnosis</dt><dd><del>guttate </del>psoriasis</dd>" in proposed
    assert "<dt>status</dt><dd><del>edited</del><ins>proposed</ins></dd>" in proposed


def test_experts_see_the_history_without_revert(client, story):
    pair, ann, _ = story
    client.force_login(ann)
    html = client.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert 'data-action="pair.edited"' in html and 'class="revert"' not in html


def test_after_a_revert_the_offer_moves_to_the_replaced_decision(client, story):
    pair, _, curator = story
    proposed = ReviewEvent.objects.get(target_id=pair.pk, action="pair.proposed")
    svc.revert_pair(pair.pk, curator, event_id=proposed.pk, version=2)
    client.force_login(curator)
    rows = _rows(client.get(f"/review/pairs/{pair.pk}/").content.decode())
    offered = {action for action, row in rows.items() if 'class="revert"' in row}
    assert offered == {"pair.edited"}  # the proposal is the state in force now


def test_a_revert_that_changes_nothing_is_refused(story, api_client_for):
    pair, _, curator = story
    edited = ReviewEvent.objects.get(target_id=pair.pk, action="pair.edited")
    with pytest.raises(Conflict) as refused:
        svc.revert_pair(pair.pk, curator, event_id=edited.pk, version=2)
    assert refused.value.code == "no_change" and refused.value.status == 409
    pair.refresh_from_db()
    assert pair.version == 2 and pair.status == "edited"
    assert not ReviewEvent.objects.filter(target_id=pair.pk, action="pair.reverted").exists()
    drafted = ReviewEvent.objects.get(target_id=pair.pk, action="vqa.drafted")
    with pytest.raises(ServiceError) as no_state:
        svc.revert_pair(pair.pk, curator, event_id=drafted.pk, version=2)
    assert no_state.value.code == "invalid"
    api = api_client_for("curator", username="cur2")
    response = api.post(f"/api/pairs/{pair.pk}/revert/", {"version": 2, "event": edited.pk},
                        format="json")  # fmt: skip
    assert response.status_code == 409 and response.json()["code"] == "no_change"


def test_the_offer_agrees_with_the_service_on_every_event(story, make_user):
    """For each event the page offers a revert on exactly when the service would do one."""
    pair, _, curator = story
    svc.review_pair(pair.pk, make_user("dan", "expert"), version=2, action="reject",
                    reason="duplicate", redecide=True)  # fmt: skip
    proposed = ReviewEvent.objects.get(target_id=pair.pk, action="pair.proposed")
    svc.revert_pair(pair.pk, curator, event_id=proposed.pk, version=3)
    stored = Pair.objects.get(pk=pair.pk)
    history = pair_history(review_context(pair.pk, curator), can_revert=True)
    assert len(history.rows) >= 6
    for row in history.rows:
        try:
            with transaction.atomic():
                svc.revert_pair(pair.pk, curator, event_id=row.event.pk, version=stored.version)
                raise _Undo
        except _Undo:
            done = True
        except ServiceError:
            done = False
        assert row.revertible == done, row.event.action


class _Undo(Exception):
    pass


def test_the_conflict_page_names_people_and_shows_times_the_image_and_a_word_diff(
    client, make_user, db
):
    pair = make_pairs(make_book(), 1)[0]
    bob = make_user("bob", "expert")
    bob.first_name, bob.last_name = "Bob", "Jones"
    bob.save()
    svc.review_pair(pair.pk, bob, version=1, action="accept", changes={"diagnosis": "eczema"})
    client.force_login(make_user("ann", "expert"))
    form = {"action": "accept", "version": 1, "text": pair.text, "modality": "clinical",
            "diagnosis": "guttate psoriasis", "age": "40", "sex": "male"}  # fmt: skip
    conflict = client.post(f"/review/pairs/{pair.pk}/", form)
    html = conflict.content.decode()
    assert conflict.status_code == 409
    decided = html[
        html.index('id="decided-by"') : html.index("</p>", html.index('id="decided-by"'))
    ]
    assert "Bob Jones" in decided and re.search(
        r'<time datetime="[^"]+" class="localtime">', decided
    )
    assert "Bob Jones's decision" in html
    assert 'id="conflict-image" src="/files/crops/panel.png"' in html
    assert "<del>eczema</del><ins>guttate psoriasis</ins>" in html
    recent = html[html.index('id="recent"') :]
    assert "Bob Jones · pair.edited" in recent and 'class="localtime"' in recent
    assert "curation/localtime.js" in html and 'style="' not in html[html.index("<main") :]
