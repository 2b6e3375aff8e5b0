"""Guidelines: built-in definitions until a curator edits them; every edit audited and guarded."""

import pytest
from django.template import Context, Template

from curation.guidelines import DEFAULTS
from curation.models import Guideline, Modality, ReviewEvent
from curation.services.errors import NotAllowed, ServiceError
from curation.services.guidelines import update_guideline
from skinplatform.accounts.roles import CURATOR, EXPERT

pytestmark = pytest.mark.django_db


def test_every_choice_has_a_definition():
    from curation.models import Flag, RejectReason

    assert set(DEFAULTS["modality"]) == {m for m in Modality if m != Modality.MIXED}
    assert set(DEFAULTS["flag"]) == set(Flag)
    assert set(DEFAULTS["reject_reason"]) == set(RejectReason)


def test_a_curator_edit_is_stored_audited_and_versioned(make_user):
    cat = make_user("cat", CURATOR)
    row = update_guideline(cat, "modality", "dermoscopic", "Through a dermatoscope.", version=0)
    assert (row.text, row.version, row.updated_by) == ("Through a dermatoscope.", 1, cat)
    event = ReviewEvent.objects.get(action="guideline.updated")
    assert event.before["text"] == DEFAULTS["modality"]["dermoscopic"]
    assert event.after == {"text": "Through a dermatoscope.", "version": 1}
    update_guideline(cat, "modality", "dermoscopic", "Second text.", version=1)
    assert Guideline.objects.get().version == 2


def test_a_stale_edit_is_refused_and_names_who_changed_it(make_user):
    cat, dot = make_user("cat", CURATOR), make_user("dot", CURATOR)
    update_guideline(cat, "flag", "face", "Faces.", version=0)
    with pytest.raises(ServiceError) as err:
        update_guideline(dot, "flag", "face", "My text.", version=0)
    assert err.value.status == 409 and "cat changed this guideline" in err.value.message
    assert Guideline.objects.get().text == "Faces."


@pytest.mark.parametrize(
    "kind,code,text,status",
    [
        ("modality", "xray", "x", 404),
        ("flag", "face", "   ", 400),
        ("flag", "face", "x" * 5001, 400),
    ],
)
def test_bad_edits_are_refused_and_store_nothing(make_user, kind, code, text, status):
    cat = make_user("cat", CURATOR)
    with pytest.raises(ServiceError) as err:
        update_guideline(cat, kind, code, text, version=0)
    assert err.value.status == status
    assert not Guideline.objects.exists() and not ReviewEvent.objects.exists()


def test_an_expert_may_read_but_not_edit(make_user, client):
    eve = make_user("eve", EXPERT)
    with pytest.raises(NotAllowed):
        update_guideline(eve, "flag", "face", "Mine.", version=0)
    client.force_login(eve)
    page = client.get("/review/guidelines/")
    assert page.status_code == 200 and "<textarea" not in page.content.decode()
    assert DEFAULTS["flag"]["face"][:30] in page.content.decode()
    refused = client.post(
        "/review/guidelines/", {"kind": "flag", "code": "face", "text": "Mine.", "version": 0}
    )
    assert refused.status_code == 403 and not Guideline.objects.exists()


def test_the_edit_page_keeps_the_typed_text_when_it_refuses(make_user, client):
    cat = make_user("cat", CURATOR)
    client.force_login(cat)
    ok = client.post(
        "/review/guidelines/",
        {"kind": "flag", "code": "face", "text": "Recognisable people.", "version": 0},
    )
    assert ok.status_code == 302
    stale = client.post(
        "/review/guidelines/",
        {"kind": "flag", "code": "face", "text": "My late text.", "version": 0},
    )
    html = stale.content.decode()
    assert stale.status_code == 409 and "cat changed this guideline" in html
    assert "My late text." in html


def test_the_panel_shows_stored_text_and_defaults(make_user, rf):
    cat = make_user("cat", CURATOR)
    update_guideline(cat, "reject_reason", "duplicate", "Seen before.", version=0)
    request = rf.get("/")
    request.user = cat
    html = Template("{% load guidelines %}{% guidelines_panel %}").render(
        Context({"request": request, "user_roles": ("expert",)})
    )
    assert 'id="guidelines-panel"' in html and "Seen before." in html
    assert DEFAULTS["modality"]["pathological"][:30] in html
    assert "Edit the guidelines" not in html  # an expert reads, a curator gets the link
