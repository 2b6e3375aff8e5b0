"""An expert reviews drafted questions on one image with the keyboard only.

With htmx each decision swaps its own card: the cards keep their order, the page is not
reloaded and keeps its scroll position, and focus moves to the next waiting question.
"""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Pair, VQAItem
from curation.services import vqa as vqa_svc
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTIONS = [
    ("diagnosis", "What is the diagnosis?", "Psoriasis."),
    ("morphology", "Describe the lesion.", "Red plaque."),
    ("site", "Where is it?", "On the thumb of the dermatologist."),
]


def _drafts(pair, questions=QUESTIONS):
    return [
        VQAItem.objects.create(
            pair=pair, question_type=qtype, question=q, answer=a, prompt_version="v1",
            draft={"question": q, "answer": a}, generator={"kind": "template"},
        )
        for qtype, q, a in questions
    ]  # fmt: skip


@pytest.fixture
def drafts(transactional_db):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (190, 120, 110)).save(buf, "PNG")
    default_storage.save("crops/panel.png", ContentFile(buf.getvalue()))
    pair = make_pairs(make_book(), 1)[0]
    Pair.objects.filter(pk=pair.pk).update(status="accepted")
    return _drafts(pair)


def _ids(page):
    return [f.get_attribute("id") for f in page.locator("#cards form.item").all()]


def test_accept_edit_reject_by_keyboard(login, page, drafts, live_server):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/next/")
    page.wait_for_selector("form.item.focused")
    assert page.locator(".badge.template").count() == 3
    order = _ids(page)
    page.evaluate("window.notReloaded = true")
    page.keyboard.press("a")
    page.wait_for_selector(f"#item-{drafts[0].pk}[data-status=accepted]")
    page.wait_for_selector(f"#item-{drafts[1].pk}.focused")
    page.keyboard.press("e")
    page.keyboard.type(" Well demarcated.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"#item-{drafts[1].pk}[data-status=edited]")
    page.wait_for_selector(f"#item-{drafts[2].pk}.focused")
    page.keyboard.press("r")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#item-{drafts[2].pk}[data-status=rejected]")
    # Same page, same order; the expert is told the image is done and where to go.
    assert page.evaluate("window.notReloaded") is True and _ids(page) == order
    page.wait_for_selector("#all-done:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "next-link"
    statuses = [VQAItem.objects.get(pk=d.pk).status for d in drafts]
    assert statuses == ["accepted", "edited", "rejected"]
    edited = VQAItem.objects.get(pk=drafts[1].pk)
    assert edited.answer.endswith("Well demarcated.") and edited.draft["answer"] == "Red plaque."
    page.keyboard.press("n")
    page.wait_for_selector("#vqa-empty")


def test_a_refused_reject_keeps_the_card_in_place_with_the_error(login, page, drafts, live_server):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/pairs/{drafts[0].pair_id}/")
    page.wait_for_selector("form.item.focused")
    page.keyboard.press("j")
    card = page.locator(f"#item-{drafts[1].pk}")
    card.locator("textarea[name=answer]").fill("Typed, not saved.")
    card.locator("button.reject").click()
    card.locator("select[name=reason]").select_option("other")
    card.locator("button.reject-confirm").click()  # "other" needs a note
    page.wait_for_selector(f"#item-{drafts[1].pk} .item-error")
    card = page.locator(f"#item-{drafts[1].pk}")
    assert "Explain the reason" in card.locator(".item-error").inner_text()
    assert card.locator("textarea[name=answer]").input_value() == "Typed, not saved."
    assert card.locator("select[name=reason]").is_visible()
    assert _ids(page)[1] == f"item-{drafts[1].pk}"
    assert VQAItem.objects.get(pk=drafts[1].pk).status == "drafted"


def test_the_image_stays_in_view_while_the_cards_scroll(login, page, drafts, live_server):
    pair = Pair.objects.get(pk=drafts[0].pair_id)
    _drafts(pair, [(f"q{i}", f"Question {i}?", f"Answer {i}.") for i in range(8)])
    page.set_viewport_size({"width": 1024, "height": 768})
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/pairs/{pair.pk}/")
    page.wait_for_selector("form.item.focused")
    page.locator("#next-link").scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 500
    box = page.locator("#crop").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 768


def test_the_add_form_shows_its_error_beside_it_and_keeps_the_text(
    login, page, drafts, live_server
):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/pairs/{drafts[0].pair_id}/")
    page.fill("#id_q", "Is the scale silvery?")
    page.click("#add-button")  # no answer
    page.wait_for_selector("#add-form #add-error")
    assert "needed" in page.locator("#add-error").inner_text()
    assert page.input_value("#id_q") == "Is the scale silvery?"
    assert page.evaluate("document.activeElement.id") == "id_q"
    page.fill("#id_a", "Yes.")
    page.click("#add-button")
    page.wait_for_selector("#add-form:not(:has(#add-error))")
    added = VQAItem.objects.get(question="Is the scale silvery?")
    assert _ids(page)[-1] == f"item-{added.pk}" and page.input_value("#id_q") == ""


def test_n_and_p_move_between_images_never_to_the_same(login, page, drafts, live_server):
    second = make_pairs(make_book("Second atlas"), 1)[0]
    Pair.objects.filter(pk=second.pk).update(status="accepted")
    _drafts(second, QUESTIONS[:1])
    first = drafts[0].pair_id
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/next/")
    page.wait_for_url(f"**/review/vqa/pairs/{first}/")
    page.keyboard.press("n")  # the first image still waits, yet n moves on
    page.wait_for_url(f"**/review/vqa/pairs/{second.pk}/")
    page.keyboard.press("p")
    page.wait_for_url(f"**/review/vqa/pairs/{first}/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/vqa/pairs/{second.pk}/")
    page.keyboard.press("n")  # wraps round to the first, never the same one
    page.wait_for_url(f"**/review/vqa/pairs/{first}/")


def test_a_stale_card_turns_into_the_conflict_in_place(login, page, drafts, live_server, make_user):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/pairs/{drafts[0].pair_id}/")
    page.wait_for_selector("form.item.focused")
    bob = make_user("bob", "expert")
    vqa_svc.Claim.objects.filter(item_type="vqa").delete()  # ann's lease lapsed meanwhile
    vqa_svc.review_item(drafts[0].pk, bob, version=1, action="accept", answer="Plaque psoriasis.")
    page.keyboard.press("a")
    page.wait_for_selector("#conflict")
    conflict = page.locator("#conflict")
    assert "bob" in conflict.locator("#changed-by").inner_text()
    assert page.locator("#conflict del").first.inner_text() == "Plaque psoriasis"
    assert page.locator("#conflict ins").first.inner_text() == "Psoriasis"
    assert page.locator("#conflict time[data-local]").count() == 1  # shown in local time
    assert len(_ids(page)) == 2  # the other cards are still there
    conflict.locator("#confirm-replace").check()
    conflict.locator("#reapply").click()
    page.wait_for_load_state()
    assert VQAItem.objects.get(pk=drafts[0].pk).answer == "Psoriasis."


def test_every_control_has_an_accessible_name(login, page, drafts, live_server):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/pairs/{drafts[0].pair_id}/")
    page.wait_for_selector("form.item.focused")
    page.keyboard.press("r")  # the reject reasons are shown too
    cdp = page.context.new_cdp_session(page)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    controls = {"textbox", "combobox", "button", "checkbox", "link", "radio", "spinbutton"}
    seen = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in controls:
            continue
        name = (node.get("name") or {}).get("value", "").strip()
        seen.append((role, name))
        assert name, f"a {role} without a name"
    assert sum(role == "textbox" for role, _ in seen) >= 8  # 3 cards x 2, a note, the add form
    assert ("combobox", "Reason for rejecting") in seen


def test_without_script_every_form_still_works(browser, drafts, live_server, make_user):
    make_user("ann", "expert", password="pw-for-tests")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "ann")
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/review/vqa/pairs/{drafts[0].pair_id}/")
        card = page.locator(f"#item-{drafts[1].pk}")
        assert card.locator("select[name=reason]").is_visible()  # no script to unfold it
        card.locator("select[name=reason]").select_option("trivial")
        card.locator("button.reject-confirm").click()
        page.wait_for_load_state()
        page.locator(f"#item-{drafts[0].pk} button.accept").click()
        page.wait_for_load_state()
        assert [VQAItem.objects.get(pk=d.pk).status for d in drafts[:2]] == [
            "accepted",
            "rejected",
        ]
        assert _ids(page) == [f"item-{d.pk}" for d in drafts]  # same order after reloads
    finally:
        context.close()
