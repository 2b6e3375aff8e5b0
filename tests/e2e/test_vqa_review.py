"""An expert reviews drafted questions on one image with the keyboard only."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Pair, VQAItem
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def drafts(transactional_db):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (190, 120, 110)).save(buf, "PNG")
    default_storage.save("crops/panel.png", ContentFile(buf.getvalue()))
    pair = make_pairs(make_book(), 1)[0]
    Pair.objects.filter(pk=pair.pk).update(status="accepted")
    made = []
    for qtype, q, a in [
        ("diagnosis", "What is the diagnosis?", "Psoriasis."),
        ("morphology", "Describe the lesion.", "Red plaque."),
        ("site", "Where is it?", "On the thumb of the dermatologist."),
    ]:
        made.append(VQAItem.objects.create(
            pair=pair, question_type=qtype, question=q, answer=a, prompt_version="v1",
            draft={"question": q, "answer": a}, generator={"kind": "template"},
        ))  # fmt: skip
    return made


def test_accept_edit_reject_by_keyboard(login, page, drafts, live_server):
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/vqa/next/")
    page.wait_for_selector("form.item.focused")
    assert page.locator(".badge.template").count() == 3
    page.keyboard.press("a")
    page.wait_for_load_state()
    page.wait_for_selector("form.item.focused[data-status=drafted]")
    page.keyboard.press("e")
    page.keyboard.type(" Well demarcated.")
    page.keyboard.press("Control+Enter")
    page.wait_for_load_state()
    page.wait_for_selector("form.item.focused[data-status=drafted]")
    page.keyboard.press("r")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#vqa-empty")
    statuses = [VQAItem.objects.get(pk=d.pk).status for d in drafts]
    assert statuses == ["accepted", "edited", "rejected"]
    edited = VQAItem.objects.get(pk=drafts[1].pk)
    assert edited.answer.endswith("Well demarcated.") and edited.draft["answer"] == "Red plaque."
