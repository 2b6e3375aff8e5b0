"""Vision drafting wired to the platform: LLM_VISION sends the stored crop, the item says what
the model saw (or that it drafted text-only and why), and visual items wait for an expert."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from curation.drafting.testing import FakeLLMServer
from curation.models import Pair, Panel, VQAItem
from curation.services import review as review_service
from curation.services.storage import store_bytes
from tests.factories import make_book, make_pairs

VISION_TYPES = {"morphology", "modality", "site", "verification"}  # for a clinical image


def _red_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (190, 50, 40)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def vision_llm(settings):
    from workers.llm import _client

    servers = []

    def start(**options) -> FakeLLMServer:
        server = FakeLLMServer(**options).start()
        servers.append(server)
        settings.LLM_BASE_URL = server.url
        settings.LLM_MODEL = "fake-vlm"
        settings.LLM_TIMEOUT = 5
        settings.LLM_VISION = True
        _client.cache_clear()
        return server

    yield start
    for server in servers:
        server.stop()
    _client.cache_clear()


@pytest.fixture
def accept(transactional_db, eager_celery, make_user):
    def run(with_crop: bool = True) -> Pair:
        expert = make_user(f"e{Pair.objects.count()}", "expert")
        (pair,) = make_pairs(make_book(), 1)
        if with_crop:
            Panel.objects.filter(pk=pair.panel_id).update(
                image=store_bytes(_red_png(), prefix="crops", ext="png")
            )
        review_service.review_pair(pair.pk, expert, version=1, action="accept")
        return pair

    return run


def test_vision_drafts_send_the_crop_and_are_marked_visual(vision_llm, accept):
    server = vision_llm()
    pair = accept()
    items = {i.question_type: i for i in VQAItem.objects.filter(pair=pair)}
    assert set(items) >= VISION_TYPES
    assert len(server.images) == len(VISION_TYPES)
    assert {im.colour for im in server.images} == {"red"}
    for qt in VISION_TYPES:
        item = items[qt]
        assert item.prompt_version == f"{qt}.vision.v1"
        assert item.image_input == "sent" and item.generator["image_bytes"] > 0
        assert item.visual and "red" in item.visual_terms
        assert item.status == VQAItem.Status.DRAFTED  # an expert must look
    diagnosis = items["diagnosis"]
    assert diagnosis.image_input == "" and not diagnosis.visual
    assert diagnosis.prompt_version == "diagnosis.v1"

    from workers.llm import draft_pair

    assert draft_pair(pair.pk) == 0  # idempotent at the vision versions
    assert len(server.images) == len(VISION_TYPES)


def test_a_server_refusing_images_gives_text_only_items_labelled_so(vision_llm, accept):
    server = vision_llm(refuse_images=True)
    pair = accept()
    items = list(VQAItem.objects.filter(pair=pair, question_type__in=VISION_TYPES))
    assert len(items) == len(VISION_TYPES) and not server.images
    for item in items:
        assert item.image_input == "fallback" and not item.visual
        assert item.generator["image_note"] == "server_refused_image: http_400"
        assert ".vision." not in item.prompt_version


def test_a_missing_crop_drafts_text_only_labelled_so(vision_llm, accept):
    server = vision_llm()
    pair = accept(with_crop=False)  # the factory's crop path names no stored file
    items = list(VQAItem.objects.filter(pair=pair, question_type__in=VISION_TYPES))
    assert items and not server.images
    assert {i.image_input for i in items} == {"fallback"}
    assert all(i.generator["image_note"].startswith("image_missing") for i in items)


def test_vision_off_sends_no_image(vision_llm, accept, settings):
    server = vision_llm()
    settings.LLM_VISION = False
    from workers.llm import _client

    _client.cache_clear()
    pair = accept()
    assert not server.images
    assert not VQAItem.objects.filter(pair=pair, visual=True).exists()
    assert VQAItem.objects.filter(pair=pair, prompt_version="morphology.v1").exists()


def test_api_and_review_page_show_visual_items(vision_llm, accept, api_client_for, client):
    vision_llm()
    pair = accept()
    api = api_client_for("expert", username="reader")
    body = api.get("/api/vqa-items/", {"pair": pair.pk, "visual": "true"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert rows and all(r["visual"] and r["image_input"] == "sent" for r in rows)
    assert {r["question_type"] for r in rows} == VISION_TYPES
    client.force_login(api.user)
    page = client.get(f"/review/vqa/pairs/{pair.pk}/").content.decode()
    assert 'class="badge visual"' in page and "visual: " in page
