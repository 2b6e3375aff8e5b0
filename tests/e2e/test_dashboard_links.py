"""In Chromium: the dashboard's bars are drawn, its rows open the filtered review queue, and a
figure card on the book page opens the panel editor."""

import pytest

from curation.models import Pair
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def books(transactional_db):
    atlas, other = make_book("Atlas"), make_book("Other")
    make_pairs(atlas, 2)
    make_pairs(atlas, 2, modality="dermoscopic")
    make_pairs(other, 2, modality="dermoscopic")
    return atlas, other


def test_dashboard_rows_open_the_filtered_queue(login, page, live_server, books):
    atlas, _ = books
    login("cat", "curator", "expert")
    page.goto(f"{live_server.url}/dashboard/")
    segment = page.locator(f'tr[data-book="{atlas.pk}"] svg.bar rect.seg-proposed')
    assert segment.bounding_box()["width"] > 200  # nothing decided yet: all grey
    page.click(f'tr[data-book="{atlas.pk}"] a.modality-link[data-modality="dermoscopic"]')
    page.wait_for_url("**/review/pairs/*/**")
    pair_id = int(page.url.split("/review/pairs/")[1].split("/")[0])
    pair = Pair.objects.get(pk=pair_id)
    assert pair.textbook_id == atlas.pk and pair.modality == "dermoscopic"


def test_book_list_and_figure_cards_lead_to_the_queue_and_the_editor(
    login, page, live_server, books
):
    atlas, _ = books
    login("ann", "expert")
    page.goto(f"{live_server.url}/books/")
    page.click(f'tr[data-book="{atlas.pk}"] a.queue-link')
    page.wait_for_url("**/review/pairs/*/**")
    pair_id = int(page.url.split("/review/pairs/")[1].split("/")[0])
    assert Pair.objects.get(pk=pair_id).textbook_id == atlas.pk
    page.goto(f"{live_server.url}/books/{atlas.pk}/")
    figure = atlas.figures.order_by("id").first()
    page.click(f'figure[data-figure="{figure.pk}"] a.fix-panels')
    page.wait_for_url(f"**/review/figures/{figure.pk}/panels/")
    page.wait_for_selector(".box")
