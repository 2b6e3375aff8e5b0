"""The pair's conflict page and history in a browser: names, times in the browser's own time
zone, the image, word diffs, and a revert that asks first."""

import io
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Claim, Pair, ReviewEvent
from curation.services import review as review_svc
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TOKYO = "Asia/Tokyo"


@pytest.fixture
def proposed(transactional_db, make_user):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (190, 120, 110)).save(buf, "PNG")
    default_storage.save("crops/panel.png", ContentFile(buf.getvalue()))
    pair = make_pairs(make_book(), 1)[0]
    bob = make_user("bob", "expert")
    bob.first_name, bob.last_name = "Bob", "Jones"
    bob.save()
    pair.bob = bob
    return pair


def _bob_decides(pair) -> None:
    Claim.objects.all().delete()  # a lease ann's login (Review / next) took has lapsed
    review_svc.review_pair(pair.pk, pair.bob, version=1, action="accept",
                           changes={"diagnosis": "eczema"})  # fmt: skip


@pytest.fixture
def decided(proposed):
    _bob_decides(proposed)
    return proposed


@pytest.fixture
def tokyo_page(browser, live_server, make_user):
    """A browser in Tokyo (UTC+9), so a local time cannot pass for the server's UTC."""
    context = browser.new_context(timezone_id=TOKYO, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)

    def login(username: str, *roles: str):
        make_user(username, *roles, password="pw-for-tests")
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield login
    context.close()


def _tokyo_hhmm(moment) -> str:
    return moment.astimezone(ZoneInfo(TOKYO)).strftime("%H:%M")


def test_the_conflict_page_in_the_browser(tokyo_page, proposed, live_server):
    pair = proposed
    page = tokyo_page("ann", "expert")
    page.goto(f"{live_server.url}/review/pairs/{pair.pk}/")
    page.fill("#review-form [name=diagnosis]", "guttate psoriasis")
    _bob_decides(pair)  # while ann edits
    page.eval_on_selector("#review-form", "f => f.submit()")
    page.wait_for_selector("#conflict")
    decided_by = page.locator("#decided-by")
    assert "Bob Jones" in decided_by.inner_text()
    when = decided_by.locator("time")
    stored = Pair.objects.get(pk=pair.pk).reviewed_at
    assert when.get_attribute("data-local") == "1"
    assert _tokyo_hhmm(stored) in when.inner_text() and "UTC" in when.get_attribute("title")
    assert page.evaluate("document.getElementById('conflict-image').naturalWidth") == 300
    assert page.locator("#conflict td.diff del").first.inner_text() == "eczema"
    assert page.locator("#conflict td.diff ins").first.inner_text() == "guttate psoriasis"
    # Reapplying replaces Bob's decision only once the box is ticked.
    page.click("#reapply")
    assert page.locator("#conflict").is_visible()  # the browser refused the unticked form
    assert Pair.objects.get(pk=pair.pk).diagnosis == "eczema"
    page.check("#confirm-replace")
    page.click("#reapply")
    page.wait_for_load_state()
    assert Pair.objects.get(pk=pair.pk).diagnosis == "guttate psoriasis"
    latest = ReviewEvent.objects.filter(target_id=pair.pk).latest("id")
    assert latest.action == review_svc.OVERRIDDEN


def test_history_times_are_local_and_revert_asks_first(tokyo_page, decided, live_server):
    pair = decided
    page = tokyo_page("cat", "curator")
    page.goto(f"{live_server.url}/review/pairs/{pair.pk}/")
    edited = page.locator('#timeline > li[data-action="pair.edited"]')
    event = ReviewEvent.objects.get(target_id=pair.pk, action="pair.edited")
    assert edited.locator("time").get_attribute("data-local") == "1"
    assert _tokyo_hhmm(event.created_at) in edited.locator("time").inner_text()
    assert "Bob Jones" in edited.inner_text()
    diagnosis = edited.locator("dl.changes > div", has=page.locator("dt", has_text="diagnosis"))
    assert diagnosis.locator("del").inner_text() == "psoriasis"
    assert diagnosis.locator("ins").inner_text() == "eczema"
    assert edited.locator("button.revert").count() == 0  # the state in force
    proposed = page.locator('#timeline > li[data-action="pair.proposed"]')
    proposed.locator("button.revert").click()
    dialog = proposed.locator("dialog")
    assert dialog.is_visible() and dialog.evaluate("d => d.matches(':modal')")
    assert page.evaluate("document.activeElement.className") == "confirm-revert"
    page.keyboard.press("Escape")  # a modal dialog closes on Esc; nothing is reverted
    assert not dialog.is_visible() and Pair.objects.get(pk=pair.pk).status == "edited"
    proposed.locator("button.revert").click()
    dialog.locator("button.confirm-revert").click()
    page.wait_for_selector('#timeline > li[data-action="pair.reverted"]')
    assert Pair.objects.get(pk=pair.pk).status == "proposed"


def test_revert_asks_first_even_without_script(browser, decided, live_server, make_user):
    make_user("cat", "curator", password="pw-for-tests")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "cat")
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/review/pairs/{decided.pk}/")
        proposed = page.locator('#timeline > li[data-action="pair.proposed"]')
        dialog = proposed.locator("dialog")
        assert not dialog.is_visible()
        proposed.locator("button.revert").click()
        assert dialog.is_visible()
        dialog.locator("button.cancel-revert").click()
        assert not dialog.is_visible() and Pair.objects.get(pk=decided.pk).status == "edited"
        proposed.locator("button.revert").click()
        dialog.locator("button.confirm-revert").click()
        page.wait_for_selector('#timeline > li[data-action="pair.reverted"]')
        assert Pair.objects.get(pk=decided.pk).status == "proposed"
    finally:
        context.close()
