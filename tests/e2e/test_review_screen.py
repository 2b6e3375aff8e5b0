"""The review page as an expert works it all day: one screen at 1440x900 and 1024x768, no
full reloads, Undo, the reject check, the help dialog, the filters, and a 720 px layout."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Figure, Page, Pair, Panel
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LONG_CAPTION = (
    "Fig. 4.2 Psoriasis vulgaris. (a) Well-demarcated erythematous plaques with silvery scale "
    "on the extensor surface of the elbow in a 54-year-old woman; note the Koebner lines along "
    "old scratches. (b) Dermoscopy of the same plaque: regularly distributed dotted vessels on "
    "a light red background with diffuse white scales. (c) Histopathology: regular acanthosis, "
    "confluent parakeratosis with neutrophils (Munro microabscesses) and thinned suprapapillary "
    "plates (H&E, x100)."
)


def _png(size, colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def pairs(transactional_db):
    default_storage.save("crops/fig.png", ContentFile(_png((900, 700), (200, 120, 110))))
    default_storage.save("crops/panel.png", ContentFile(_png((600, 800), (190, 110, 100))))
    default_storage.save("crops/next.png", ContentFile(_png((500, 400), (120, 110, 190))))
    default_storage.save("pages/p.png", ContentFile(_png((595, 842), (250, 250, 245))))
    book = make_book()
    items = make_pairs(book, 6)
    Page.objects.filter(textbook=book).update(image="pages/p.png")
    Figure.objects.filter(textbook=book).update(
        caption=LONG_CAPTION,
        bbox=[50, 480, 545, 800],
        mentions=[{"page": 3, "text": "Plaques as in Fig. 4.2a are typical. " * 6}] * 3,
        section=["Papulosquamous disorders", "Psoriasis"],
    )
    Panel.objects.filter(figure__textbook=book).update(
        letter="a", subcaption="Well-demarcated erythematous plaques with silvery scale."
    )
    Panel.objects.filter(pair=items[1]).update(image="crops/next.png")
    Pair.objects.filter(pk=items[0].pk).update(
        extract_confidence=0.42, extract_doubts=["caption split over two columns"]
    )
    return book, items


def _inside(page, selector: str) -> bool:
    """The element's box lies in the viewport, and its top-left and bottom-right corners
    are really on screen: not scrolled away inside a box, nor under the sticky action bar."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not rendered"
    in_view = (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 0.5
        and box["y"] + box["height"] <= size["height"] + 0.5
    )
    # Text runs over lines: its first line's start and its last line's end must show.
    on_top = page.evaluate(
        """sel => { const el = document.querySelector(sel), rects = el.getClientRects();
             const first = rects[0], last = rects[rects.length - 1];
             const points = [[first.left + 3, first.top + 3]];
             if (el.getBoundingClientRect().height <= 80) {
               points.push([last.right - 3, last.bottom - 3]); }  // of the crop, its top
             return points.every(([x, y]) => { const hit = document.elementFromPoint(x, y);
               return hit && (el.contains(hit) || hit.contains(el)); }); }""",
        selector,
    )
    return in_view and on_top


ONE_SCREEN = [
    "#viewer", "#crop", "#figure-caption", "#subcaption", "#id_text", "#modality-group",
    "#id_diagnosis", "#id_age", "#proposed-age", "#id_sex", "#proposed-sex", "#flag-group",
    "#action-bar", "#btn-accept", "#btn-reject", "#btn-skip", "#progress", "#extract-doubts",
]  # fmt: skip


def _login(browser, live_server, make_user, width, height, name="ann"):
    make_user(name, "expert", password="pw-for-tests")
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url("**/review/pairs/*/")
    page.wait_for_function("() => document.getElementById('crop').dataset.scale !== undefined")
    return context, page


@pytest.mark.parametrize("width,height", [(1440, 900), (1024, 768)])
def test_one_screen_holds_the_whole_decision(
    browser, live_server, make_user, pairs, tmp_path, width, height
):
    context, page = _login(browser, live_server, make_user, width, height)
    try:
        page.screenshot(path=str(tmp_path / f"review-{width}x{height}.png"))
        outside = [s for s in ONE_SCREEN if not _inside(page, s)]
        assert not outside, f"below the fold or cut at {width}x{height}: {outside}"
        assert page.evaluate("window.scrollY") == 0
        assert page.locator("h1").count() == 1 and "Fig." in page.locator("h1").inner_text()
        assert "0.42" in page.locator("#extract-confidence").inner_text()
        # The action bar stays on screen however far the page scrolls.
        assert page.locator("#action-bar").evaluate("e => getComputedStyle(e).position") == (
            "sticky"
        )
        page.mouse.wheel(0, 2000)
        page.wait_for_timeout(100)
        assert _inside(page, "#action-bar")
        page.evaluate("window.scrollTo(0, 0)")

        # Mentions fold out beside the caption, on the same screen.
        page.keyboard.press("m")
        assert page.locator("#mentions ul").is_visible()
        caption, mentions = (
            page.locator(s).bounding_box() for s in ("#figure-caption", "#mentions")
        )
        assert mentions["y"] < caption["y"] + caption["height"]  # beside it, not below
        assert _inside(page, "#mentions summary") and _inside(page, "#action-bar")
        page.screenshot(path=str(tmp_path / f"review-{width}x{height}-mentions.png"))

        # The page the figure comes from: a tab beside the crop, scrolled to the figure's box.
        page.keyboard.press("g")
        assert page.locator("#pageview").is_visible() and not page.locator("#viewer").is_visible()
        page.wait_for_function("() => document.getElementById('pageview').scrollTop > 0")
        view = page.locator("#pageview").bounding_box()
        figure = page.locator("#pageview rect.box-figure").bounding_box()
        assert figure["y"] < view["y"] + view["height"] and figure["y"] + 20 > view["y"]
        assert _inside(page, "#pageview")
        page.screenshot(path=str(tmp_path / f"review-{width}x{height}-page.png"))
        page.keyboard.press("g")
        assert page.locator("#viewer").is_visible()
    finally:
        context.close()


def test_decisions_swap_in_place_with_undo_and_a_client_side_reject_check(
    browser, live_server, make_user, pairs
):
    _, items = pairs
    context, page = _login(browser, live_server, make_user, 1024, 600)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    try:
        assert page.locator("#pair").get_attribute("data-next-crop").endswith("crops/next.png")
        page.wait_for_function(  # the next pair's crop is fetched ahead
            "() => performance.getEntriesByType('resource')"
            ".some(e => e.name.endsWith('crops/next.png'))"
        )
        # and the page it sits on (this pair's own page image is lazy and hidden: only the
        # prefetch can have fetched it)
        assert page.locator("#pair").get_attribute("data-next-page").endswith("pages/p.png")
        page.wait_for_function(
            "() => performance.getEntriesByType('resource')"
            ".some(e => e.name.endsWith('pages/p.png'))"
        )
        page.evaluate("window.notReloaded = true; window.scrollTo(0, 120)")
        scrolled = page.evaluate("window.scrollY")
        assert scrolled > 0
        page.keyboard.press("a")
        page.wait_for_selector(f'#pair[data-pair="{items[1].pk}"]')
        assert page.evaluate("window.notReloaded") is True  # swapped, not reloaded
        assert page.evaluate("window.scrollY") == scrolled  # and where the expert was
        assert page.url.endswith(f"/review/pairs/{items[1].pk}/")
        assert "1 / 6" in page.locator("#progress").inner_text()
        assert "1 today" in page.locator("#progress").inner_text()
        assert page.locator("#toast").is_visible()
        assert "accepted" in page.locator("#toast").inner_text()

        # Reject with no reason: refused in the page, focus stays on the reason, no request.
        before = len(posts)
        page.keyboard.press("r")
        page.keyboard.press("Enter")
        assert page.locator("#reject-error").is_visible()
        assert "Choose a reason" in page.locator("#reject-error").inner_text()
        assert page.evaluate("document.activeElement.id") == "id_reason"
        assert len(posts) == before
        page.keyboard.press("Escape")

        # Undo (u) brings the accepted pair back, undecided and held by the expert.
        page.keyboard.press("u")
        page.wait_for_selector(f'#pair[data-pair="{items[0].pk}"]')
        assert page.evaluate("window.notReloaded") is True
        items[0].refresh_from_db()
        assert items[0].status == "proposed"
        assert "undone" in page.locator("#review-notice").inner_text()
        assert "0 / 6" in page.locator("#progress").inner_text()
        # The keys still work after the swaps: decide it again, then the toast goes by itself.
        page.keyboard.press("2")
        page.keyboard.press("a")
        page.wait_for_selector(f'#pair[data-pair="{items[1].pk}"]')
        items[0].refresh_from_db()
        assert (items[0].status, items[0].modality) == ("edited", "dermoscopic")
        assert page.locator("#toast").is_visible()
        page.wait_for_timeout(5300)
        assert not page.locator("#toast").is_visible()
        assert page.evaluate("window.notReloaded") is True
    finally:
        context.close()


def test_filters_are_dropdowns_that_drive_the_queue(browser, live_server, make_user, pairs):
    _, items = pairs
    Pair.objects.filter(pk=items[3].pk).update(modality="dermoscopic")
    context, page = _login(browser, live_server, make_user, 1440, 900)
    try:
        page.evaluate("window.notReloaded = true")
        page.select_option("#filter-modality", "dermoscopic")
        page.wait_for_selector(f'#pair[data-pair="{items[3].pk}"]')
        assert page.url.endswith(f"/review/pairs/{items[3].pk}/?modality=dermoscopic")
        assert page.locator("#filter-modality").input_value() == "dermoscopic"
        assert "0 / 1" in page.locator("#progress").inner_text()
        assert page.evaluate("window.notReloaded") is True
        page.select_option("#filter-modality", "")  # the pair held still fits: it stays
        page.wait_for_url(f"**/review/pairs/{items[3].pk}/")
        page.select_option("#filter-confidence", "doubtful")  # only items[0] is doubtful
        page.wait_for_url("**confidence=doubtful**")
        assert page.locator("#pair").get_attribute("data-pair") == str(items[0].pk)
        page.select_option("#filter-flag", "face")  # nothing left: the empty queue's page
        page.wait_for_url("**/review/next/**")
        assert page.evaluate("window.notReloaded") is None
    finally:
        context.close()


def test_help_dialog_traps_focus_the_skip_link_and_720px(browser, live_server, make_user, pairs):
    context, page = _login(browser, live_server, make_user, 720, 900)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 720  # no sideways scroll
        for selector in ("#viewer", "#action-bar", "#btn-accept"):
            assert _inside(page, selector), selector
        page.keyboard.press("?")
        dialog = page.locator("#help")
        assert dialog.is_visible() and dialog.evaluate("d => d.open")
        for _ in range(4):
            page.keyboard.press("Tab")
            assert page.evaluate("document.getElementById('help').contains(document.activeElement)")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.getElementById('help').contains(document.activeElement)")
        page.keyboard.press("a")  # shortcuts do nothing while the dialog is open
        assert page.locator("#pair-status").inner_text() == "proposed"
        page.keyboard.press("Escape")
        assert not dialog.is_visible()
        # The modality and flag groups are fieldsets with legends.
        assert "Modality" in page.locator("#modality-group > legend").inner_text()
        assert "Flags" in page.locator("#flag-group > legend").inner_text()
        # The skip link is the first stop and lands on the content.
        page.goto(page.url)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main-content"
    finally:
        context.close()
