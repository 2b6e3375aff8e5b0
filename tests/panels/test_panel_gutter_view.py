"""The editor asks where to cut a box; the answer comes from the page preview's pixels."""

from curation.models import Page
from tests.panels.conftest import FIGURE_BOX, make_figure, make_previewed_book


def test_gutter_endpoint_finds_the_gap_or_falls_back(client, expert):
    book = make_previewed_book(pages=1)
    figure, _ = make_figure(book, boxes=[FIGURE_BOX])
    client.force_login(expert)
    url = f"/review/figures/{figure.pk}/panels/gutter/"
    found = client.get(url, {"box": "50,60,300,400", "axis": "v"}).json()
    assert found["found"] is True and abs(found["cut"] - 175) < 1.5  # the gap 170-180
    stacked = client.get(url, {"box": "50,60,300,400", "axis": "h"}).json()
    assert stacked == {"cut": 230.0, "found": False, "message": stacked["message"]}
    assert "No white gutter" in stacked["message"]
    assert client.get(url, {"box": "50,60,300", "axis": "v"}).status_code == 400
    assert client.get(url, {"box": "50,60,300,400", "axis": "x"}).status_code == 400
    assert client.get(url, {"box": "nan,60,300,400", "axis": "v"}).status_code == 400
    assert (
        client.get(
            "/review/figures/999/panels/gutter/", {"box": "1,1,9,9", "axis": "v"}
        ).status_code
        == 404
    )


def test_without_a_preview_the_cut_is_the_middle(client, expert, book):
    figure, _ = make_figure(book, boxes=[FIGURE_BOX])
    Page.objects.filter(textbook=book).update(image="")
    client.force_login(expert)
    answer = client.get(
        f"/review/figures/{figure.pk}/panels/gutter/", {"box": "50,60,300,400", "axis": "v"}
    ).json()
    assert answer == {
        "cut": 175.0,
        "found": False,
        "message": "No page preview; cut in the middle.",
    }
