"""VQA review: leases per image, versioned decisions, drafts kept, hand-written items."""

import pytest

from curation.models import Pair, Review, ReviewEvent, VQAItem
from curation.services import vqa as svc
from curation.services.errors import Conflict, NotAllowed, ServiceError
from tests.factories import make_book, make_pairs


def _draft(pair, qtype="diagnosis", q="What is the diagnosis?", a="Plaque psoriasis."):
    return VQAItem.objects.create(
        pair=pair, question_type=qtype, question=q, answer=a, prompt_version="v1",
        draft={"question": q, "answer": a}, generator={"kind": "llm", "model": "m"},
    )  # fmt: skip


@pytest.fixture
def setup(db, make_user):
    book = make_book()
    first, second, unreviewed = make_pairs(book, 3)
    Pair.objects.filter(pk__in=[first.pk, second.pk]).update(status="accepted")
    items = [_draft(first), _draft(first, "morphology", "Describe it.", "Red plaques."),
             _draft(second), _draft(unreviewed)]  # fmt: skip
    return items, make_user("ann", "expert"), make_user("bob", "expert")


def test_images_are_leased_to_one_expert(setup):
    items, ann, bob = setup
    assert svc.claim_next_pair(ann).pk == items[0].pair_id
    assert svc.claim_next_pair(bob).pk == items[2].pair_id
    assert svc.claim_next_pair(ann).pk == items[0].pair_id  # a reload keeps the place
    with pytest.raises(Conflict):
        svc.review_item(items[0].pk, bob, version=1, action="accept")


def test_accept_edit_reject_keep_the_draft(setup):
    items, ann, _ = setup
    svc.claim_next_pair(ann)
    accepted = svc.review_item(items[0].pk, ann, version=1, action="accept")
    assert accepted.status == "accepted" and accepted.version == 2
    better = "Well-demarcated erythematous plaques with silvery scale."
    edited = svc.review_item(items[1].pk, ann, version=1, action="accept", answer=better)
    assert edited.status == "edited"
    assert edited.draft == {"question": "Describe it.", "answer": "Red plaques."}
    assert Review.objects.filter(item_type="vqa").count() == 2
    event = ReviewEvent.objects.get(target_type="vqaitem", target_id=items[1].pk)
    assert event.before["answer"] == "Red plaques." and event.after["status"] == "edited"
    # the lease ends once every drafted item of the image is decided
    assert not svc.holder(items[0].pair_id)


def test_reject_needs_a_reason_and_stale_versions_conflict(setup):
    items, ann, bob = setup
    with pytest.raises(ServiceError, match="reason"):
        svc.review_item(items[2].pk, ann, version=1, action="reject")
    rejected = svc.review_item(items[2].pk, ann, version=1, action="reject", reason="ungrounded")
    assert rejected.status == "rejected" and rejected.draft["answer"] == "Plaque psoriasis."
    with pytest.raises(Conflict) as err:
        svc.review_item(items[2].pk, bob, version=1, action="accept")
    assert err.value.code == "stale" and err.value.extra["current"]["status"] == "rejected"


def test_hand_written_items(setup, make_user):
    items, ann, _ = setup
    item = svc.add_item(
        items[0].pair_id, ann, question_type="management",
        question="First-line treatment?", answer="Topical corticosteroids.",
    )  # fmt: skip
    assert item.status == "accepted" and item.draft == {} and item.generator["kind"] == "expert"
    with pytest.raises(ServiceError):
        svc.add_item(items[0].pair_id, ann, question_type="x", question=" ", answer="a")
    with pytest.raises(NotAllowed):
        svc.add_item(items[0].pair_id, make_user("gpu", "ml_worker"), question_type="x",
                     question="q", answer="a")  # fmt: skip


def test_page_escapes_drafts_and_labels_template_items(setup, client):
    items, ann, _ = setup
    VQAItem.objects.filter(pk=items[0].pk).update(
        answer="<script>window.pwned=1</script>", generator={"kind": "template"}
    )
    client.force_login(ann)
    response = client.get("/review/vqa/next/")
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "<script>window.pwned" not in html and "&lt;script&gt;" in html
    assert "template, not LLM" in html


def test_form_flow_and_conflict_page(setup, client, make_user):
    items, ann, _ = setup
    client.force_login(ann)
    url = f"/review/vqa/items/{items[0].pk}/"
    ok = client.post(url, {"version": 1, "action": "accept", "question": items[0].question,
                           "answer": "Chronic plaque psoriasis."})  # fmt: skip
    assert ok.status_code == 302
    assert VQAItem.objects.get(pk=items[0].pk).status == "edited"
    page = client.get(f"/review/vqa/pairs/{items[0].pair_id}/").content.decode()
    assert "history (1)" in page and "vqa.edited" in page
    stale = client.post(url, {"version": 1, "action": "accept", "question": "Q", "answer": "A"})
    assert stale.status_code == 409 and b"changed while you were editing" in stale.content


def test_api(setup, api_client_for):
    items, *_ = setup
    api = api_client_for("expert", username="cara")
    claimed = api.post("/api/vqa-items/claim-next/", {}, format="json")
    assert [i["id"] for i in claimed.json()] == [items[0].pk, items[1].pk]
    ok = api.post(f"/api/vqa-items/{items[0].pk}/review/", {"version": 1, "action": "reject",
                  "reason": "trivial"}, format="json")  # fmt: skip
    assert ok.status_code == 200 and ok.json()["status"] == "rejected"
    again = api.post(f"/api/vqa-items/{items[0].pk}/review/", {"version": 1, "action": "accept"},
                     format="json")  # fmt: skip
    assert again.status_code == 409
    listing = api.get("/api/vqa-items/?status=rejected").json()
    assert listing["count"] == 1
    history = api.get(f"/api/vqa-items/{items[0].pk}/history/").json()
    assert [h["action"] for h in history] == ["vqa.rejected"]
    made = api.post("/api/vqa-items/", {"pair": items[0].pair_id, "question_type": "site",
                    "question": "Where?", "answer": "Elbow."}, format="json")  # fmt: skip
    assert made.status_code == 201
