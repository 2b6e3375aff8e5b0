"""An expert fixes a figure's panels with the keyboard: split, resize, merge; crops re-render."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Pair, Panel, ReviewEvent
from tests.panels.conftest import FIGURE_BOX, make_figure, make_previewed_book

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def figure(transactional_db, settings, eager_celery):
    settings.CROP_DPI = 72
    book = make_previewed_book(pages=1)
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX], caption="Fig. 1.1 Two plaques.")
    return figure, pair


def _colour(panel: Panel) -> tuple[int, int, int]:
    with default_storage.open(panel.image, "rb") as fh:
        img = Image.open(io.BytesIO(fh.read())).convert("RGB")
    return img.getpixel((img.width // 2, img.height // 2))


def test_split_resize_merge_by_keyboard(login, page, figure, live_server):
    figure, pair = figure
    login("ann", "expert")
    page.wait_for_url(f"**/review/pairs/{pair.pk}/")
    page.click("#fix-panels")
    page.wait_for_url(f"**/review/figures/{figure.pk}/panels/?pair={pair.pk}")

    # Split side by side: focus the box, v, then x saves.
    page.focus(f'.box[data-pair="{pair.pk}"]')
    page.keyboard.press("v")
    page.wait_for_selector(".box.part")  # after the editor asked where the gutter is
    assert page.locator(".box.part").count() == 1
    assert "white gutter" in page.inner_text("#editor-status")
    page.keyboard.press("x")
    page.wait_for_selector("text=Split into 2 panels")
    left, right = Panel.objects.filter(figure=figure).order_by("index")
    assert left.bbox == [50, 60, 175, 400] and right.bbox == [175, 60, 300, 400]
    # The task ran after commit: each half has its own crop, red and blue.
    red, blue = _colour(left), _colour(right)
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]
    assert page.locator(".re-rendering").count() == 0

    # Shrink the left box by 4 points with Shift+ArrowLeft twice, then w saves.
    page.focus(f'.box[data-pair="{pair.pk}"]')
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Shift+ArrowLeft")
    assert "171" in page.get_attribute(f'.box[data-pair="{pair.pk}"]', "aria-label")
    page.keyboard.press("w")
    page.wait_for_selector("text=Saved 1 box")
    assert Panel.objects.get(pk=left.pk).bbox == [50, 60, 171, 400]

    # Letters typed into the table, then saved.
    new_pair = right.pair
    page.fill(f"#letter_{pair.pk}", "a")
    page.fill(f"#letter_{new_pair.pk}", "b")
    page.click("#save-subcaptions")
    page.wait_for_selector("text=Saved the sub-captions")
    assert list(Panel.objects.order_by("index").values_list("letter", flat=True)) == ["a", "b"]

    # Merge back: Space checks each box, m merges.
    page.focus(f'.box[data-pair="{pair.pk}"]')
    page.keyboard.press(" ")
    page.focus(f'.box[data-pair="{new_pair.pk}"]')
    page.keyboard.press(" ")
    page.keyboard.press("m")
    page.wait_for_selector("text=Merged 2 panels")
    assert Pair.objects.count() == 1 and Panel.objects.get().bbox == [50, 60, 300, 400]

    actions = list(
        ReviewEvent.objects.filter(target_type="pair", target_id=pair.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[1:] == [
        "pair.panel_split", "pair.crop_rendered", "pair.panel_adjusted", "pair.crop_rendered",
        "pair.subcaption_changed", "pair.panel_merged", "pair.crop_rendered",
    ]  # fmt: skip

    # Back to the review page with b; it shows the new crop and no pending note.
    page.keyboard.press("b")
    page.wait_for_url(f"**/review/pairs/{pair.pk}/")
    assert Panel.objects.get().image in page.get_attribute("#crop", "src")
    assert page.locator(".render-note").inner_text() == ""
