"""Every page under the real Content-Security-Policy in Chromium: nothing refused, one h1 each,
a skip link first in the tab order, and no sideways scrolling at 720 px.

The template scan (tests/platform/test_csp.py) sees what a template says; this sees what the
browser does with the page, including markup that scripts insert after load.
"""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Release, VQAItem
from tests.e2e.csp import watch_refusals
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def content(transactional_db):
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 120, 110)).save(buf, "PNG")
    for name in ("crops/fig.png", "crops/panel.png"):
        default_storage.save(name, ContentFile(buf.getvalue()))
    book = make_book()
    pairs = make_pairs(book, 3)
    VQAItem.objects.create(
        pair=pairs[0], question_type="diagnosis", question="What is shown?",
        answer="Plaque psoriasis.", draft={"question": "What is shown?"},
    )  # fmt: skip
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    return book, pairs, release


def _pages(book, pairs, release):
    figure = pairs[0].panel.figure_id
    return [
        "/",
        "/books/",
        f"/books/{book.pk}/",
        "/review/next/",
        f"/review/pairs/{pairs[1].pk}/",
        f"/review/figures/{figure}/panels/",
        f"/review/vqa/pairs/{pairs[0].pk}/",
        "/dashboard/",
        "/review/guidelines/",
        "/releases/",
        "/releases/new/",
        f"/releases/{release.pk}/",
        "/review/pairs/999999/",
    ]


def test_no_page_breaks_the_policy_and_each_has_one_h1_and_a_skip_link(
    login, page, content, live_server
):
    refused = watch_refusals(page)
    login("ada", "admin")
    for path in _pages(*content):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() == 1, path
        page.keyboard.press("Tab")
        first = page.evaluate("document.activeElement && document.activeElement.className")
        assert "skip-link" in (first or ""), (path, first)
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id || location.hash") in {
            "main-content",
            "#main-content",
        }
        assert not refused, (path, refused)


def test_the_login_page_and_the_api_docs_run_under_the_policy(page, live_server, transactional_db):
    refused = watch_refusals(page)
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").count() == 1
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info")  # Swagger UI started: its script file ran
    assert not refused, refused


def test_every_page_fits_a_720px_window(login, page, content, live_server):
    page.set_viewport_size({"width": 720, "height": 900})
    login("ada", "admin")
    for path in _pages(*content):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)


def test_the_guidelines_panel_opens_beside_the_pair(login, page, content, live_server):
    _, pairs, _ = content
    login("eve", "expert")
    page.goto(f"{live_server.url}/review/pairs/{pairs[1].pk}/")
    panel = page.locator("#guidelines-panel")
    panel.locator("summary").click()
    assert "dermatoscope" in panel.inner_text()


def test_a_decision_swap_after_zooming_the_crop_breaks_no_policy(login, page, content, live_server):
    """The crop's zoom is an inline style set from script (allowed through CSSOM); htmx's
    settle step would copy the old crop's style attribute onto the new one with setAttribute,
    which the policy refuses, so the pages tell htmx to settle only class, width and height."""
    refused = watch_refusals(page)
    login("eve", "expert")
    page.goto(f"{live_server.url}/review/next/")
    first = page.locator("#pair").get_attribute("data-pair")
    page.keyboard.press("+")
    page.wait_for_function("() => document.getElementById('crop').style.transform !== ''")
    page.keyboard.press("a")
    page.wait_for_function(
        "first => document.getElementById('pair').dataset.pair !== first", arg=first
    )
    page.wait_for_load_state("networkidle")
    assert not refused, refused
