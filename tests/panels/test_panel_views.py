"""The panel editor page, its render-status fragment, and the API actions."""

import json

import pytest

from curation.models import Pair, Panel, ReviewEvent
from curation.services import dispatch
from tests.dispatching import record_sends
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure

XSS = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


@pytest.fixture(autouse=True)
def no_render(monkeypatch):
    record_sends(monkeypatch, dispatch.RENDER_CROPS)


@pytest.fixture
def web(client, expert):
    client.force_login(expert)
    return client


def test_editor_shows_boxes_and_escapes_untrusted_text(web, book):
    figure, (a, b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=[XSS, "ok"], caption=XSS
    )
    response = web.get(f"/review/figures/{figure.pk}/panels/?pair={b.pk}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert f'href="/review/pairs/{b.pk}/" id="back-link"' in html
    data = json.loads(html.split('id="panel-data" type="application/json">')[1].split("<")[0])
    assert [r["pair"] for r in data] == [a.pk, b.pk] and data[0]["bbox"] == LEFT


def test_review_page_links_to_the_editor(web, book):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    html = web.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert f"/review/figures/{figure.pk}/panels/?pair={pair.pk}" in html


def test_form_adjust_redirects_and_shows_re_rendering(web, book):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    url = f"/review/figures/{figure.pk}/panels/"
    response = web.post(url, {
        "action": ["", "adjust"], f"version_{pair.pk}": "1", f"box_{pair.pk}": "60,70,290,390",
        "pair": str(pair.pk),
    })  # fmt: skip
    assert response.status_code == 302 and response["Location"] == f"{url}?pair={pair.pk}"
    assert Panel.objects.get().bbox == [60, 70, 290, 390]
    page = web.get(response["Location"]).content.decode()
    assert "re-rendering" in page and "Saved 1 box" in page
    note = web.get(f"{url}status/?pair={pair.pk}").content.decode()
    assert "re-rendering the crop" in note and "every 2s" in note
    # on the review page the note is loaded by htmx from the same fragment
    assert "hx-get" in note


def test_stale_form_is_a_409_with_the_current_layout(web, book):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    url = f"/review/figures/{figure.pk}/panels/"
    form = {"action": "adjust", f"version_{pair.pk}": "1", f"box_{pair.pk}": "60,70,290,390"}
    assert web.post(url, form).status_code == 302
    form[f"box_{pair.pk}"] = "10,10,200,200"
    response = web.post(url, form)
    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="panel-error" data-code="stale"' in html
    assert f'name="version_{pair.pk}" value="2"' in html
    assert Panel.objects.get().bbox == [60, 70, 290, 390]


def test_form_split_merge_and_subcaptions(web, book):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    url = f"/review/figures/{figure.pk}/panels/"
    response = web.post(url, {
        "action": "split", "split_pair": str(pair.pk), f"version_{pair.pk}": "1",
        "split_boxes": "50,60,170,400;180,60,300,400",
    })  # fmt: skip
    assert response.status_code == 302
    a, b = Pair.objects.order_by("panel__index")
    response = web.post(url, {
        "action": "subcaptions", f"version_{a.pk}": "2", f"version_{b.pk}": "1",
        f"letter_{a.pk}": "a", f"subcaption_{a.pk}": "Red.",
        f"letter_{b.pk}": "b", f"subcaption_{b.pk}": "Blue.",
    })  # fmt: skip
    assert response.status_code == 302
    assert list(Panel.objects.order_by("index").values_list("letter", "subcaption")) == [
        ("a", "Red."), ("b", "Blue."),
    ]  # fmt: skip
    response = web.post(url, {
        "action": "merge", "merge": [str(a.pk), str(b.pk)],
        f"version_{a.pk}": "3", f"version_{b.pk}": "2",
    })  # fmt: skip
    assert response.status_code == 302
    assert Pair.objects.count() == 1 and Panel.objects.get().bbox == [50, 60, 300, 400]


def test_form_refusals_show_the_message(web, book):
    figure, (a, _b) = make_figure(book, boxes=[LEFT, RIGHT])
    url = f"/review/figures/{figure.pk}/panels/"
    response = web.post(url, {"action": "merge", "merge": [str(a.pk)], f"version_{a.pk}": "1"})
    assert response.status_code == 400 and b"at least two panels" in response.content
    assert web.post(url, {"action": "nonsense"}).status_code == 400
    assert web.get("/review/figures/999/panels/").status_code == 404


def test_curators_see_force(client, curator, book):
    figure, _ = make_figure(book, boxes=[FIGURE_BOX])
    client.force_login(curator)
    assert b'id="force"' in client.get(f"/review/figures/{figure.pk}/panels/").content


def test_api_layout_and_fixes(api_client_for, book):
    api = api_client_for("expert")
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    base = f"/api/figures/{figure.pk}/panels/"
    layout = api.get(base).json()
    assert layout["panels"][0]["pair"] == pair.pk and layout["panels"][0]["version"] == 1
    assert layout["page_width"] == 595 and layout["rendering"] is False

    response = api.post(f"{base}adjust/", {
        "boxes": {str(pair.pk): [60, 70, 290, 390]}, "versions": {str(pair.pk): 1},
    }, format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["rendering"] is True
    assert response.json()["panels"][0]["machine_bbox"] == FIGURE_BOX

    stale = api.post(f"{base}adjust/", {
        "boxes": {str(pair.pk): [0, 0, 90, 90]}, "versions": {str(pair.pk): 1},
    }, format="json")  # fmt: skip
    assert stale.status_code == 409 and stale.json()["code"] == "stale"
    assert stale.json()["versions"] == {str(pair.pk): 2}

    split = api.post(f"{base}split/", {
        "pair": pair.pk, "version": 2, "boxes": [LEFT, RIGHT], "letters": ["a", "b"],
    }, format="json")  # fmt: skip
    assert split.status_code == 200
    rows = split.json()["panels"]
    assert [r["letter"] for r in rows] == ["a", "b"]
    a, b = rows[0]["pair"], rows[1]["pair"]

    subs = api.post(f"{base}subcaptions/", {
        "changes": {str(b): {"subcaption": "Blue plaque."}}, "versions": {str(b): 1},
    }, format="json")  # fmt: skip
    assert subs.status_code == 200 and subs.json()["panels"][1]["subcaption"] == "Blue plaque."

    merge = api.post(f"{base}merge/", {
        "pairs": [a, b], "versions": {str(a): 3, str(b): 2},
    }, format="json")  # fmt: skip
    assert merge.status_code == 200 and len(merge.json()["panels"]) == 1
    actions = set(ReviewEvent.objects.values_list("action", flat=True))
    assert {"pair.panel_adjusted", "pair.panel_split", "pair.panel_merged",
            "pair.subcaption_changed"} <= actions  # fmt: skip


def test_api_validation_and_roles(api_client_for, book):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    base = f"/api/figures/{figure.pk}/panels/"
    api = api_client_for("expert")
    bad = api.post(f"{base}adjust/", {"boxes": {str(pair.pk): [1, 2]}, "versions": {}},
                   format="json")  # fmt: skip
    assert bad.status_code == 400
    assert api.get("/api/figures/999/panels/").status_code == 404
    worker = api_client_for("ml_worker")
    assert worker.get(base).status_code == 403


def test_schema_documents_the_panel_actions(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for action in ("adjust", "split", "merge", "subcaptions"):
        assert f"/api/figures/{{id}}/panels/{action}/" in schema
