"""A curator reverts a panel fix from the pair's history: the box comes back, the crop is
re-rendered by the panel fixes' task, and the revert shows in the timeline."""

import pytest

from curation.models import Panel
from curation.selectors.panels import render_states
from curation.services import panels as panel_svc
from curation.services import review as review_svc
from tests.panels.conftest import FIGURE_BOX, make_figure, make_previewed_book

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MOVED = [60.0, 70.0, 290.0, 390.0]


@pytest.fixture
def adjusted(transactional_db, settings, eager_celery, make_user):
    settings.CROP_DPI = 72
    book = make_previewed_book(pages=1)
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    expert = make_user("ann", "expert")
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    return pair


def test_curator_reverts_a_box_adjust_from_the_timeline(login, page, adjusted, live_server):
    pair = adjusted
    moved_crop = Panel.objects.get(pair=pair).image
    assert moved_crop != "crops/panel.png"  # the task rendered the adjusted box
    login("cat", "curator")
    page.goto(f"{live_server.url}/review/pairs/{pair.pk}/")
    # Browsing history claims nothing: the pair stays open to the experts' queue.
    assert review_svc.claim_of(pair.pk) is None and page.locator("#renew").count() == 0
    current = page.locator('#pageview rect[stroke="#d1242f"]')
    assert current.get_attribute("data-box") == "60.0,70.0,290.0,390.0"

    # Only the events whose state differs from now offer a revert, and it asks first.
    offered = page.locator("#timeline > li:has(button.revert)")
    assert [li.get_attribute("data-action") for li in offered.all()] == ["pair.proposed"]
    proposed = page.locator('li[data-action="pair.proposed"]')
    proposed.locator("button.revert").click()
    dialog = proposed.locator("dialog")
    assert dialog.is_visible() and "panel box" in dialog.inner_text()
    dialog.locator("button.cancel-revert").click()  # closes it; nothing is reverted
    assert not dialog.is_visible() and Panel.objects.get(pair=pair).bbox == MOVED
    proposed.locator("button.revert").click()
    dialog.locator("button.confirm-revert").click()
    page.wait_for_selector('#timeline li[data-action="pair.reverted"]')
    newest = [li.get_attribute("data-action") for li in page.locator("#timeline > li").all()[:2]]
    assert newest == ["pair.crop_rendered", "pair.reverted"]  # the task ran after commit
    assert current.get_attribute("data-box") == "50.0,60.0,300.0,400.0"
    panel = Panel.objects.get(pair=pair)
    assert panel.bbox == FIGURE_BOX
    assert panel.image not in (moved_crop, "crops/panel.png")  # re-rendered after commit
    assert render_states([pair.pk]) == {}
    assert page.locator("#crop").get_attribute("src").endswith(panel.image)


def test_curator_undoes_a_decision_and_the_pair_is_decidable_again(
    login, page, adjusted, live_server, make_user
):
    """A decided pair opened from the history is read-only; the curator's revert to the state
    before the decision is a new event, and the pair waits for review again."""
    pair = adjusted
    expert = make_user("bob", "expert")
    review_svc.review_pair(pair.pk, expert, version=2, action="reject", reason="duplicate")
    login("cat", "curator")
    page.goto(f"{live_server.url}/review/pairs/{pair.pk}/")
    assert "rejected" in page.locator("#decided").inner_text()
    assert "by bob" in page.locator("#decided").inner_text()
    assert page.locator("#id_text").is_disabled()
    assert review_svc.claim_of(pair.pk) is None
    page.click('li[data-action="pair.panel_adjusted"] button.revert')
    page.click('li[data-action="pair.panel_adjusted"] dialog button.confirm-revert')
    page.wait_for_selector('#timeline li[data-action="pair.reverted"]')
    pair.refresh_from_db()
    assert pair.status == "proposed" and pair.reject_reason == ""
    assert page.locator("#decided").count() == 0 and not page.locator("#id_text").is_disabled()
