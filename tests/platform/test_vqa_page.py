"""The VQA review page: stable card order, htmx swaps of one card, add-form errors in place,
next/previous image, and the conflict page's names, times, image and word diff."""

import re

import pytest

from curation.models import Pair, VQAItem
from curation.services import vqa as svc
from tests.factories import make_book, make_pairs


def _draft(pair, qtype="diagnosis", q="What is the diagnosis?", a="Plaque psoriasis."):
    return VQAItem.objects.create(
        pair=pair, question_type=qtype, question=q, answer=a, prompt_version="v1",
        draft={"question": q, "answer": a}, generator={"kind": "llm", "model": "m"},
    )  # fmt: skip


@pytest.fixture
def setup(db, make_user):
    first, second, third = make_pairs(make_book(), 3)
    Pair.objects.filter(pk__in=[first.pk, second.pk, third.pk]).update(status="accepted")
    items = [_draft(first), _draft(first, "morphology", "Describe it.", "Red plaques."),
             _draft(first, "site", "Where?", "Elbow."), _draft(second), _draft(third)]  # fmt: skip
    return items, make_user("ann", "expert")


HTMX = {"HTTP_HX_REQUEST": "true"}
QUERY_BUDGET = 18  # 15 measured on SQLite: session, user, roles, lock, claim, writes, card


def _card_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<form method="post" action="[^"]+" class="card item[^"]*"'
                                       r'\s+data-status="\w+" id="item-(\d+)"', html)]  # fmt: skip


def test_cards_keep_their_order_after_decisions(setup, client):
    items, ann = setup
    client.force_login(ann)
    pair_id = items[0].pair_id
    svc.review_item(items[1].pk, ann, version=1, action="reject", reason="trivial")
    svc.review_item(items[0].pk, ann, version=1, action="accept")
    html = client.get(f"/review/vqa/pairs/{pair_id}/").content.decode()
    # By id, whatever their status (it used to sort by status: decided cards jumped).
    assert _card_ids(html) == [items[0].pk, items[1].pk, items[2].pk]


def test_an_htmx_decision_returns_only_that_card(setup, client):
    items, ann = setup
    client.force_login(ann)
    form = {"version": 1, "action": "accept", "question": "Describe it.", "answer": "Red scaly."}
    response = client.post(f"/review/vqa/items/{items[1].pk}/", form, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert _card_ids(html) == [items[1].pk] and 'data-status="edited"' in html
    assert 'name="version" value="2"' in html and 'hx-target="this"' in html


def test_an_htmx_refusal_keeps_the_typed_text_in_the_card(setup, client):
    items, ann = setup
    client.force_login(ann)
    form = {"version": 1, "action": "reject", "answer": "My typed answer", "reason": "other"}
    response = client.post(f"/review/vqa/items/{items[0].pk}/", {**form, "note": ""}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 400 and _card_ids(html) == [items[0].pk]
    assert "Explain the reason" in html and "My typed answer" in html
    assert 'value="other" selected' in html and "rejecting" in html


def test_an_htmx_stale_decision_shows_the_conflict_in_the_cards_place(setup, client, make_user):
    items, ann = setup
    bob = make_user("bob", "expert")
    bob.first_name, bob.last_name = "Bob", "Jones"
    bob.save()
    svc.review_item(
        items[0].pk, bob, version=1, action="accept", answer="Chronic plaque psoriasis."
    )
    client.force_login(ann)
    response = client.post(f"/review/vqa/items/{items[0].pk}/", {"version": 1, "action": "accept",
                           "question": "What is the diagnosis?", "answer": "Guttate psoriasis."},
                           **HTMX)  # fmt: skip
    html = response.content.decode()
    assert response.status_code == 409
    assert (
        response["HX-Retarget"] == f"#item-{items[0].pk}" and response["HX-Reselect"] == "#conflict"
    )
    assert "Bob Jones" in html and 'id="confirm-replace" required' in html
    assert re.search(r'<time datetime="[^"]+" class="localtime">[^<]+ UTC</time>', html)
    assert 'class="conflict-image"' in html and "crops/panel.png" in html
    assert "<del>Chronic plaque</del><ins>Guttate</ins> psoriasis." in html


def test_add_errors_show_beside_the_form_with_the_typed_text(setup, client):
    items, ann = setup
    client.force_login(ann)
    url = f"/review/vqa/pairs/{items[0].pair_id}/add/"
    typed = {"question_type": "site", "question": "Where is it, precisely?", "answer": ""}
    full = client.post(url, typed)
    html = full.content.decode()
    assert full.status_code == 400
    form = html[html.index('id="add-form"') : html.index("</form>", html.index('id="add-form"'))]
    assert 'id="add-error"' in form and "are needed" in form
    assert "Where is it, precisely?</textarea>" in form and 'value="site"' in form
    swapped = client.post(url, typed, **HTMX).content.decode()
    assert swapped.lstrip().startswith('<form method="post"') and 'id="add-error"' in swapped
    assert "Where is it, precisely?</textarea>" in swapped
    added = client.post(url, {**typed, "answer": "On the elbow."}, **HTMX).content.decode()
    new = VQAItem.objects.latest("id")
    assert new.question == "Where is it, precisely?" and 'id="add-error"' not in added
    assert 'hx-swap-oob="beforeend:#cards"' in added and f'id="item-{new.pk}"' in added


def test_next_never_returns_the_same_image_and_previous_goes_back(setup, client):
    items, ann = setup
    client.force_login(ann)
    first, second, third = (items[0].pair_id, items[3].pair_id, items[4].pair_id)
    assert client.get("/review/vqa/next/")["Location"] == f"/review/vqa/pairs/{first}/"
    page = client.get(f"/review/vqa/pairs/{first}/").content.decode()
    assert f'href="/review/vqa/next/?after={first}" id="next-link"' in page
    assert 'id="prev-link"' not in page  # nothing before the first image
    # The first image still has drafted questions, yet "next" moves on, then wraps round.
    assert (
        client.get(f"/review/vqa/next/?after={first}")["Location"] == f"/review/vqa/pairs/{second}/"
    )
    assert (
        client.get(f"/review/vqa/next/?after={third}")["Location"] == f"/review/vqa/pairs/{first}/"
    )
    page = client.get(f"/review/vqa/pairs/{third}/").content.decode()
    assert f'href="/review/vqa/pairs/{second}/" id="prev-link"' in page
    # With no other image waiting, "next" says so instead of showing the same one.
    VQAItem.objects.exclude(pair_id=first).update(status="accepted")
    alone = client.get(f"/review/vqa/next/?after={first}")
    assert alone.status_code == 200 and b'id="vqa-empty"' in alone.content
    assert f'href="/review/vqa/pairs/{first}/" id="back-link"'.encode() in alone.content


def test_the_page_has_no_inline_script_or_style(setup, client):
    items, ann = setup
    client.force_login(ann)
    html = client.get(f"/review/vqa/pairs/{items[0].pair_id}/").content.decode()
    main = html[html.index("<main") :]
    assert "<style" not in main and 'style="' not in main and not re.search(r"\son\w+=", main)
    assert not re.search(r"<script(?![^>]*\ssrc=)", main)
    assert "curation/vqa.js" in main and "curation/vqa.css" in main


def test_a_cards_history_shows_what_each_decision_changed(setup, client):
    items, ann = setup
    client.force_login(ann)
    svc.review_item(items[0].pk, ann, version=1, action="accept", answer="Guttate psoriasis.")
    html = client.get(f"/review/vqa/pairs/{items[0].pair_id}/").content.decode()
    card = html[html.index(f'id="item-{items[0].pk}"') : html.index(f'id="item-{items[1].pk}"')]
    assert "<dt>answer</dt><dd><del>Plaque</del><ins>Guttate</ins> psoriasis.</dd>" in card
    assert "<dt>status</dt><dd><del>drafted</del><ins>edited</ins></dd>" in card


def test_a_swapped_card_costs_a_few_queries(setup, client, django_assert_max_num_queries):
    items, ann = setup
    client.force_login(ann)
    client.get(f"/review/vqa/pairs/{items[0].pair_id}/")  # holds the image
    form = {"version": 1, "action": "accept", "question": "Describe it.", "answer": "Red."}
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = client.post(f"/review/vqa/items/{items[1].pk}/", form, **HTMX)
    assert response.status_code == 200


def test_without_htmx_a_refusal_shows_in_its_card_on_the_full_page(setup, client):
    items, ann = setup
    client.force_login(ann)
    form = {"version": 1, "action": "reject", "answer": "Typed here", "reason": ""}
    response = client.post(f"/review/vqa/items/{items[1].pk}/", form)
    html = response.content.decode()
    assert response.status_code == 400 and _card_ids(html) == [i.pk for i in items[:3]]
    card = html[html.index(f'id="item-{items[1].pk}"') : html.index(f'id="item-{items[2].pk}"')]
    assert "Choose a reason" in card and "Typed here</textarea>" in card
