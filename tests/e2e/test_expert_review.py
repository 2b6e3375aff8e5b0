"""An expert reviews with the keyboard only; a second expert gets other items; conflicts show."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Pair
from curation.services import review as svc
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def pairs(transactional_db):
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 120, 110)).save(buf, "PNG")
    for name in ("crops/fig.png", "crops/panel.png"):
        default_storage.save(name, ContentFile(buf.getvalue()))
    book = make_book()
    return book, make_pairs(book, 7)


def _status(pair):
    pair.refresh_from_db()
    return pair.status


def test_five_pairs_by_keyboard_only(login, page, pairs, live_server):
    book, items = pairs
    login("ann", "expert")
    page.wait_for_url("**/review/pairs/*/")
    assert page.url.endswith(f"/review/pairs/{items[0].pk}/")

    page.keyboard.press("a")  # 1: accept as proposed
    page.wait_for_url(f"**/review/pairs/{items[1].pk}/")
    page.keyboard.press("e")  # 2: edit the text, save with Ctrl+Enter
    page.keyboard.type(" Edited by keyboard.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"**/review/pairs/{items[2].pk}/")
    page.keyboard.press("r")  # 3: reject with a reason chosen by arrow keys
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/review/pairs/{items[3].pk}/")
    page.keyboard.press("s")  # 4: skip
    page.wait_for_url(f"**/review/pairs/{items[4].pk}/")
    page.keyboard.press("2")  # 5: modality dermoscopic, then accept
    page.keyboard.press("a")
    page.wait_for_url(f"**/review/pairs/{items[5].pk}/")

    assert [_status(p) for p in items[:5]] == ["accepted", "edited", "rejected", "proposed",
                                               "edited"]  # fmt: skip
    assert items[1].text.endswith("Edited by keyboard.")
    assert items[2].reject_reason == "not_a_figure"
    assert items[4].modality == "dermoscopic"

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "fix the panels" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    before = float(page.locator("#crop").get_attribute("data-scale"))
    page.keyboard.press("+")
    assert float(page.locator("#crop").get_attribute("data-scale")) > before
    page.keyboard.press("f")
    page.wait_for_url("**/panels/**")

    # The curator's book page counts what the expert did.
    counts = Pair.objects.filter(textbook=book)
    assert counts.filter(status="accepted").count() == 1
    assert counts.filter(status="edited").count() == 2
    assert counts.filter(status="rejected").count() == 1


def test_second_session_gets_different_items(login, page, browser, pairs, live_server, make_user):
    login("ann", "expert")
    page.wait_for_url("**/review/pairs/*/")
    ann_pair = page.url.rstrip("/").rsplit("/", 1)[1]

    make_user("bob", "expert", password="pw-for-tests")
    bob_context = browser.new_context()
    bob = bob_context.new_page()
    bob.goto(f"{live_server.url}/accounts/login/")
    bob.fill("#id_username", "bob")
    bob.fill("#id_password", "pw-for-tests")
    bob.click("button[type=submit]")
    bob.wait_for_url("**/review/pairs/*/")
    bob_pair = bob.url.rstrip("/").rsplit("/", 1)[1]
    assert ann_pair != bob_pair
    bob.goto(f"{live_server.url}/review/pairs/{ann_pair}/")
    assert "is reviewing this pair now" in bob.locator("#held").inner_text()
    assert bob.locator("#id_text").is_disabled()  # read-only while ann holds it
    assert svc.claim_of(int(ann_pair)).user.username == "ann"  # looking took nothing
    bob_context.close()


def test_stale_edit_shows_the_conflict_view(login, page, pairs, live_server, make_user):
    _, items = pairs
    ann = login("ann", "expert")
    page.wait_for_url(f"**/review/pairs/{items[0].pk}/")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="ann")
    # The same pair is decided under the open page (another tab of hers, say).
    svc.review_pair(items[0].pk, user, version=1, action="accept", changes={"diagnosis": "lupus"})
    ann.keyboard.press("e")
    ann.keyboard.type(" Mine.")
    ann.keyboard.press("Control+Enter")
    ann.wait_for_selector("#conflict")
    assert "lupus" in ann.locator("#conflict").inner_text()
    assert "You decided this pair" in ann.locator("#decided-by").inner_text()
    ann.click("#reapply")  # the confirmation is required: the browser does not submit
    assert ann.locator("#confirm-replace").evaluate("box => !box.validity.valid")
    items[0].refresh_from_db()
    assert not items[0].text.endswith("Mine.")
    ann.check("#confirm-replace")
    ann.click("#reapply")
    ann.wait_for_url(f"**/review/pairs/{items[1].pk}/")
    items[0].refresh_from_db()
    # Only what this page changed went again: the other tab's diagnosis stays.
    assert items[0].text.endswith("Mine.") and items[0].diagnosis == "lupus"


def test_script_in_a_caption_never_runs(login, page, transactional_db, live_server):
    book = make_book()
    xss = 'Fig. 9.9 <script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    make_pairs(book, 1, caption=xss)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login("ann", "expert")
    page.wait_for_url("**/review/pairs/*/")
    assert page.evaluate("window.pwned") is None
    assert "<script>window.pwned=1</script>" in page.locator("#figure-caption").inner_text()
    assert not dialogs


def test_unchanged_accept_read_only_decisions_and_no_claim_by_url(login, page, pairs, live_server):
    """Accept with no change stays accepted (the extractor's "female", no age); going back to
    a decided pair shows it read-only until "change decision"; opening a pair by its URL
    holds no claim."""
    _, items = pairs
    first, other = items[0], items[5]
    proposal = {**first.proposed, "sex": "female", "age": None, "diagnosis": ""}
    Pair.objects.filter(pk=first.pk).update(proposed=proposal, sex="female", age=None,
                                            diagnosis="")  # fmt: skip
    ann = login("ann", "expert")
    ann.wait_for_url(f"**/review/pairs/{first.pk}/")
    assert "(suggested: female)" in ann.locator("#proposed-sex").inner_text()
    assert ann.locator("#renew").count() == 1  # the page that claimed it keeps the lease
    ann.keyboard.press("a")
    ann.wait_for_url(f"**/review/pairs/{items[1].pk}/")
    first.refresh_from_db()
    assert (first.status, first.sex, first.age, first.diagnosis) == ("accepted", "female", None, "")

    ann.keyboard.press("p")  # back to the pair just decided
    ann.wait_for_url(f"**/review/pairs/{first.pk}/")
    assert "accepted" in ann.locator("#decided").inner_text()
    assert "by ann" in ann.locator("#decided").inner_text()
    assert ann.locator("#id_text").is_disabled() and ann.locator("#btn-accept").is_disabled()
    assert ann.locator("#renew").count() == 0
    ann.keyboard.press("c")
    ann.wait_for_url(f"**/review/pairs/{first.pk}/?change=1")
    assert ann.locator("#changing").is_visible() and not ann.locator("#id_text").is_disabled()
    ann.keyboard.press("3")
    ann.keyboard.press("a")
    ann.wait_for_url("**/review/pairs/*/")
    first.refresh_from_db()
    assert (first.status, first.modality, first.version) == ("edited", "pathological", 3)

    ann.goto(f"{live_server.url}/review/pairs/{other.pk}/")  # by its URL, as from history
    assert svc.claim_of(other.pk) is None and ann.locator("#renew").count() == 0
    assert not ann.locator("#id_text").is_disabled()  # unclaimed and waiting: decidable here
