"""The panel editor's tools in Chromium: the overlap warning, a split that snaps to the white
gutter, drawing a new box, the undo stack, and crops that refresh when the re-render ends."""

from __future__ import annotations

import pymupdf
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from curation.models import Pair, Panel
from curation.services import dispatch
from tests.dispatching import record_sends
from tests.factories import make_book
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGE_W, PAGE_H = 595, 842


def _book_with(rects):
    """A one-page book whose PDF holds coloured rectangles, with its page preview rendered."""
    from curation.extract.pagerender import render_pages
    from curation.models import Page
    from curation.services.storage import store_bytes

    doc = pymupdf.open()
    pdf_page = doc.new_page(width=PAGE_W, height=PAGE_H)
    for rect, colour in rects:
        pdf_page.draw_rect(pymupdf.Rect(*rect), color=None, fill=colour)
    data = doc.tobytes()
    doc.close()
    book = make_book(pages=1)
    default_storage.save(book.file, ContentFile(data))
    previews = render_pages(default_storage.path(book.file), 1, 1, dpi=72)
    Page.objects.filter(textbook=book, number=1).update(
        image=store_bytes(previews[1], prefix="pages", ext="jpg")
    )
    return book


RED, BLUE = (0.8, 0.1, 0.1), (0.1, 0.2, 0.8)


@pytest.fixture
def editor(login, page, live_server, settings, eager_celery):
    settings.CROP_DPI = 72

    def open_(figure, pair):
        login("ann", "expert")
        page.goto(f"{live_server.url}/review/figures/{figure.pk}/panels/?pair={pair.pk}")
        page.wait_for_selector(f'.box[data-pair="{pair.pk}"]')
        return page

    return open_


def _stage_point(page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#stage").bounding_box()
    return box["x"] + x * box["width"] / PAGE_W, box["y"] + y * box["height"] / PAGE_H


def _label(page, pair) -> str:
    return page.get_attribute(f'.box[data-pair="{pair.pk}"]', "aria-label")


def test_split_snaps_to_an_off_centre_gutter(transactional_db, editor):
    book = _book_with([([50, 60, 120, 400], RED), ([130, 60, 300, 400], BLUE)])
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    page = editor(figure, pair)
    page.focus(f'.box[data-pair="{pair.pk}"]')
    page.keyboard.press("v")
    page.wait_for_selector(".box.part")
    assert "Cut along the white gutter" in page.inner_text("#editor-status")
    assert "125" in _label(page, pair)  # the gutter at 120-130, not the middle (175)
    page.keyboard.press("x")
    page.wait_for_selector("text=Split into 2 panels")
    boxes = [p.bbox for p in Panel.objects.filter(figure=figure).order_by("index")]
    assert boxes == [[50, 60, 125, 400], [125, 60, 300, 400]]


def test_split_without_a_gutter_cuts_in_the_middle_and_says_so(transactional_db, editor):
    book = _book_with([([50, 60, 300, 400], RED)])
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    page = editor(figure, pair)
    page.focus(f'.box[data-pair="{pair.pk}"]')
    page.keyboard.press("h")
    page.wait_for_selector(".box.part")
    assert "No white gutter" in page.inner_text("#editor-status")
    assert "50, 60, 300, 230" in _label(page, pair)


def test_overlap_warns_live_blocks_the_save_and_undo_clears_it(transactional_db, editor):
    book = _book_with([(LEFT, RED), (RIGHT, BLUE)])
    figure, (a, _b) = make_figure(book, boxes=[LEFT, RIGHT], letters=["a", "b"])
    page = editor(figure, a)
    assert page.locator("#overlap-warning").is_hidden()
    page.focus(f'.box[data-pair="{a.pk}"]')
    for _ in range(8):  # grow a by 16 points, 6 into b
        page.keyboard.press("Shift+ArrowRight")
    assert page.locator(".box.overlap").count() == 2
    warning = page.locator("#overlap-warning")
    assert warning.is_visible() and "panel a and panel b" in warning.inner_text()
    assert page.is_disabled("#save-boxes")
    page.keyboard.press("w")  # refused on the page too
    assert Panel.objects.get(pair=a).bbox == LEFT
    # The arrow presses were one edit: one undo takes them all back.
    page.keyboard.press("Control+z")
    assert page.locator(".box.overlap").count() == 0 and warning.is_hidden()
    assert "50, 60, 170, 400" in _label(page, a)
    assert page.is_disabled("#undo")


def test_draw_a_new_box_and_save_it(transactional_db, editor):
    book = _book_with([(LEFT, RED), (RIGHT, BLUE)])
    figure, (a,) = make_figure(book, boxes=[LEFT])  # extraction missed the blue panel
    page = editor(figure, a)
    page.click("#draw-box")
    assert page.get_attribute("#draw-box", "aria-pressed") == "true"
    page.mouse.move(*_stage_point(page, 182, 62))
    page.mouse.down()
    page.mouse.move(*_stage_point(page, 240, 200), steps=4)
    page.mouse.move(*_stage_point(page, 298, 398), steps=4)
    page.mouse.up()
    assert page.locator(".box.new").count() == 1
    assert page.is_enabled("#save-boxes")
    page.keyboard.press("w")
    page.wait_for_selector("text=Added 1 panel(s)")
    assert Pair.objects.count() == 2
    new = Panel.objects.get(figure=figure, index=1)
    assert all(abs(v - w) < 2 for v, w in zip(new.bbox, [182, 62, 298, 398], strict=True))
    assert page.locator(".box").count() == 2 and page.locator(".box.new").count() == 0


def test_a_drawn_box_over_a_panel_is_flagged(transactional_db, editor):
    book = _book_with([(LEFT, RED)])
    figure, (a,) = make_figure(book, boxes=[LEFT], letters=["a"])
    page = editor(figure, a)
    page.keyboard.press("d")
    page.mouse.move(*_stage_point(page, 150, 100))
    page.mouse.down()
    page.mouse.move(*_stage_point(page, 250, 300), steps=4)
    page.mouse.up()
    assert "panel a and new box 1" in page.inner_text("#overlap-warning")
    assert page.is_disabled("#save-boxes")
    page.click("#undo")
    assert page.locator(".box.new").count() == 0 and page.is_hidden("#overlap-warning")


def test_undo_stack_steps_back_through_unsaved_edits(transactional_db, editor):
    book = _book_with([(LEFT, RED), (RIGHT, BLUE)])
    figure, (a, b) = make_figure(book, boxes=[LEFT, RIGHT], letters=["a", "b"])
    page = editor(figure, a)
    page.focus(f'.box[data-pair="{a.pk}"]')
    page.keyboard.press("ArrowUp")  # edit 1: a moves up 2 points
    page.focus(f'.box[data-pair="{b.pk}"]')
    page.keyboard.press("Shift+ArrowUp")  # edit 2: b shrinks by 2 points
    assert "50, 58, 170, 398" in _label(page, a)
    assert "180, 60, 300, 398" in _label(page, b)
    page.keyboard.press("Control+z")
    assert "180, 60, 300, 400" in _label(page, b) and "50, 58, 170, 398" in _label(page, a)
    assert page.input_value(f"#box_{b.pk}") == "180,60,300,400"
    page.click("#undo")
    assert "50, 60, 170, 400" in _label(page, a)
    assert page.is_disabled("#undo") and page.is_disabled("#save-boxes")
    # Esc discards everything at once.
    page.focus(f'.box[data-pair="{a.pk}"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Control+ArrowRight")
    page.keyboard.press("Escape")
    assert "50, 60, 170, 400" in _label(page, a)
    assert Panel.objects.get(pair=a).bbox == LEFT


def test_crops_refresh_in_place_when_the_re_render_finishes(
    transactional_db, login, page, live_server, settings, monkeypatch
):
    settings.CROP_DPI = 72
    jobs = record_sends(monkeypatch, dispatch.RENDER_CROPS)
    book = _book_with([(LEFT, RED), (RIGHT, BLUE)])
    figure, (a,) = make_figure(book, boxes=[FIGURE_BOX])
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/figures/{figure.pk}/panels/?pair={a.pk}")
    page.focus(f'.box[data-pair="{a.pk}"]')
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("w")
    page.wait_for_selector("text=Saved 1 box(es)")
    assert page.locator(".re-rendering").count() == 1
    old_src = page.get_attribute(f'img[data-crop-pair="{a.pk}"]', "src")
    page.evaluate("window.__sameDocument = true")

    from workers.panels import render_crops

    (job,) = jobs
    assert render_crops.run(*job) == 1  # the worker finishes while the page is open
    page.wait_for_selector("#render-done", timeout=10_000)
    page.wait_for_function(
        f"() => document.querySelector('img[data-crop-pair=\"{a.pk}\"]').src.indexOf('v=') > 0"
    )
    new_src = page.get_attribute(f'img[data-crop-pair="{a.pk}"]', "src")
    image = Panel.objects.get(pair=a).image
    assert new_src != old_src and image in new_src
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert page.locator(".re-rendering").count() == 0
    assert "reload" not in page.inner_text("#render-done")
