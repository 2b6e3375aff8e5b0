"""Vision drafting: the panel image goes out as a bounded data: URI, and every way that can
fail ends in a text-only draft that says so."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from curation.drafting import DraftSource, draft_items, get_prompt, parse_output, prompt_versions
from curation.drafting.errors import JunkOutput
from curation.drafting.image import ImageUnusable, prepare_image
from curation.drafting.testing import FakeLLMServer, Reply, Status, decode_image, image_urls


def png(width: int, height: int, colour=(200, 40, 40), noise: bool = False) -> bytes:
    if noise:
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        img = Image.fromarray(pixels)
    else:
        img = Image.new("RGB", (width, height), colour)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def decoded(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.fixture
def red_psoriasis(psoriasis) -> DraftSource:
    return replace(psoriasis, image=png(320, 240))


def test_small_png_goes_as_it_is():
    data = png(320, 240)
    image = prepare_image(data, max_bytes=1_000_000, max_side=1024)
    assert not image.reencoded and image.mime == "image/png"
    assert image.data_uri.startswith("data:image/png;base64,")
    assert base64.b64decode(image.data_uri.split(",", 1)[1]) == data


def test_oversized_image_is_shrunk_and_reencoded_within_bounds():
    data = png(2400, 1600, noise=True)
    assert len(data) > 5_000_000
    image = prepare_image(data, max_bytes=200_000, max_side=1024)
    assert image.reencoded and image.mime == "image/jpeg"
    assert image.size_bytes <= 200_000
    img = decoded(image.data_uri)
    assert max(img.size) <= 1024 and img.format == "JPEG"
    assert img.size[0] / img.size[1] == pytest.approx(1.5, rel=0.01)  # aspect kept


def test_image_that_cannot_fit_is_refused_clearly():
    with pytest.raises(ImageUnusable) as e:
        prepare_image(png(800, 600, noise=True), max_bytes=300, max_side=1024)
    assert e.value.reason == "too_large"
    assert "does not fit in 300 bytes" in str(e.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "missing"),
        (b"\x89PNG\r\n\x1a\nnot really", "undecodable"),
        (png(120, 90, noise=True)[:-200], "undecodable"),  # cut off mid-file
    ],
)
def test_missing_or_broken_image_is_refused(data, reason):
    with pytest.raises(ImageUnusable) as e:
        prepare_image(data, max_bytes=1_000_000, max_side=1024)
    assert e.value.reason == reason


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageUnusable) as e:
        prepare_image(png(100, 100), max_bytes=1_000_000, max_side=1024)
    assert e.value.reason == "too_large"


def test_vision_prompt_sends_image_part_with_the_text(red_psoriasis):
    uri = prepare_image(red_psoriasis.image, max_bytes=10**6, max_side=1024).data_uri
    prompt = get_prompt("morphology", "vision")
    assert prompt.version == "morphology.vision.v1"
    system, user = prompt.messages(red_psoriasis, uri)
    image_part, text_part = user["content"]
    assert image_part == {"type": "image_url", "image_url": {"url": uri}}
    assert "Figure caption: Fig. 3.2 Psoriasis vulgaris" in text_part["text"]
    assert "basis" in text_part["text"] and "image" in system["content"]
    with pytest.raises(ValueError, match="needs the image"):
        prompt.messages(red_psoriasis)
    with pytest.raises(ValueError, match="sends no image"):
        get_prompt("morphology").messages(red_psoriasis, uri)


def test_vision_versions_only_for_types_one_can_see():
    text, vision = prompt_versions(), prompt_versions(vision=True)
    assert set(text) == set(vision)
    assert vision["morphology"] == "morphology.vision.v1"
    assert vision["dermoscopy"] == "dermoscopy.vision.v1"
    for qt in ("diagnosis", "differential", "management"):  # from the book, not the picture
        assert vision[qt] == text[qt]


def test_vision_reply_must_say_its_basis():
    reply = '{"question":"q?","answer":"a red plaque","evidence":"","basis":"image"}'
    good = parse_output(reply, "", True)
    assert good.visual
    with pytest.raises(JunkOutput, match="missing"):
        parse_output('{"question":"q?","answer":"a","evidence":""}', "", True)
    with pytest.raises(JunkOutput, match="basis"):
        parse_output('{"question":"q?","answer":"a","evidence":"","basis":"guess"}', "", True)


def test_vision_draft_sends_the_image_and_is_marked_visual(make_client, fake_llm, red_psoriasis):
    client = make_client(vision=True)
    [d] = draft_items(red_psoriasis, client, question_types=["morphology"])
    assert d.ok, d.error
    [seen] = fake_llm.images
    assert (seen.mime, seen.width, seen.height, seen.colour) == ("image/png", 320, 240, "red")
    body = fake_llm.requests[0]
    assert body["response_format"]["json_schema"]["name"] == "vqa_item_vision"
    assert d.generator.prompt_version == "morphology.vision.v1"
    assert d.generator.image == "sent" and d.generator.image_bytes == len(red_psoriasis.image)
    # The colour came from the picture: the text never says "red", so it is a visual term.
    assert d.answer.endswith("mostly red.")
    assert d.visual and d.basis == "both" and "red" in d.visual_terms
    assert d.grounded and d.unsupported_terms == []


def test_types_without_a_vision_variant_send_no_image(make_client, fake_llm, red_psoriasis):
    [d] = draft_items(red_psoriasis, make_client(vision=True), question_types=["diagnosis"])
    assert d.ok and not fake_llm.images and not image_urls(fake_llm.requests[0])
    assert d.generator.image == "" and d.generator.prompt_version == "diagnosis.v1"
    assert not d.visual


def test_text_client_sends_no_image_even_with_one_at_hand(make_client, fake_llm, red_psoriasis):
    [d] = draft_items(red_psoriasis, make_client(), question_types=["morphology"])
    assert d.ok and not fake_llm.images and d.generator.prompt_version == "morphology.v1"
    assert not d.visual and d.generator.image == ""


def test_oversized_image_arrives_shrunk(make_client, fake_llm, psoriasis):
    source = replace(psoriasis, image=png(2400, 1600, noise=True))
    client = make_client(vision=True, image_max_bytes=150_000, image_max_side=768)
    [d] = draft_items(source, client, question_types=["morphology"])
    assert d.ok and d.generator.image == "sent"
    [seen] = fake_llm.images
    assert seen.mime == "image/jpeg" and seen.size_bytes <= 150_000
    assert max(seen.width, seen.height) <= 768
    assert fake_llm.request_bytes[0] < 150_000 * 4 / 3 + 20_000  # base64 plus the prompt


def test_image_that_cannot_be_bounded_drafts_text_only_labelled(make_client, fake_llm, psoriasis):
    source = replace(psoriasis, image=png(800, 600, noise=True))
    client = make_client(vision=True, image_max_bytes=300)
    [d] = draft_items(source, client, question_types=["morphology"])
    assert d.ok
    assert not fake_llm.images and not image_urls(fake_llm.requests[0])
    assert d.generator.image == "fallback"
    assert d.generator.image_note.startswith("image_too_large:")
    assert d.generator.prompt_version == "morphology.v1"
    assert not d.visual and d.grounded
    assert client.stats.image_fallbacks == 1 and client.stats.images_sent == 0


def test_undecodable_panel_drafts_text_only_labelled(make_client, fake_llm, psoriasis):
    source = replace(psoriasis, image=b"GIF89a broken")
    [d] = draft_items(source, make_client(vision=True), question_types=["morphology"])
    assert d.ok and d.generator.image == "fallback"
    assert d.generator.image_note.startswith("image_undecodable:")
    assert not fake_llm.requests[0]["messages"][1]["content"].startswith("data:")


def test_server_refusing_images_falls_back_and_stops_sending_them(sleeps, red_psoriasis):
    with FakeLLMServer(refuse_images=True) as server:
        from curation.drafting import LLMClient

        client = LLMClient(base_url=server.url, model="m", vision=True, sleep=sleeps)
        first = draft_items(red_psoriasis, client, question_types=["morphology"])[0]
        second = draft_items(red_psoriasis, client, question_types=["site"])[0]
        client.close()
    assert first.ok and second.ok
    assert [bool(image_urls(b)) for b in server.requests] == [True, False, False]
    for d in (first, second):
        assert d.generator.image == "fallback"
        assert d.generator.image_note == "server_refused_image: http_400"
        assert d.generator.prompt_version.endswith(".v1") and ".vision." not in (
            d.generator.prompt_version
        )
        assert not d.visual
    assert sleeps == []  # a refusal is not retried with backoff


def test_bare_400_blames_structured_outputs_first_then_the_image(
    make_client, fake_llm, red_psoriasis
):
    fake_llm.script([Status(400), Status(400)])
    [d] = draft_items(red_psoriasis, make_client(vision=True), question_types=["morphology"])
    assert d.ok and d.generator.image == "fallback"
    sent = fake_llm.requests
    assert "response_format" in sent[0] and "response_format" not in sent[1]
    assert image_urls(sent[0]) and image_urls(sent[1]) and not image_urls(sent[2])


def test_413_falls_back_for_that_image_only(sleeps, psoriasis):
    from curation.drafting import LLMClient

    big = replace(psoriasis, image=png(600, 400, noise=True))
    small = replace(psoriasis, image=png(64, 64))
    with FakeLLMServer(max_image_bytes=50_000) as server:
        client = LLMClient(base_url=server.url, model="m", vision=True, sleep=sleeps)
        first = draft_items(big, client, question_types=["morphology"])[0]
        second = draft_items(small, client, question_types=["morphology"])[0]
        client.close()
    assert first.generator.image == "fallback"
    assert first.generator.image_note == "server_refused_image: http_413"
    assert second.generator.image == "sent" and second.visual


def _responder(answer: str, basis: str):
    def respond(body, n):
        decode_image(image_urls(body)[0])  # the image is there and decodes
        return Reply({"question": f"Q{n}?", "answer": answer, "evidence": "", "basis": basis})

    return respond


def test_visual_words_are_kept_but_an_invented_diagnosis_is_still_ungrounded(sleeps, red_psoriasis):
    from curation.drafting import LLMClient

    cases = {
        "seen": ("Psoriasis vulgaris with glossy violaceous papules.", "both"),
        "invented": ("This looks like lichen planus with violaceous papules.", "image"),
    }
    out = {}
    for name, (answer, basis) in cases.items():
        with FakeLLMServer(responder=_responder(answer, basis)) as server:
            client = LLMClient(base_url=server.url, model="m", vision=True, sleep=sleeps)
            [out[name]] = draft_items(
                red_psoriasis, client, question_types=["morphology"], drop_ungrounded=True
            )
            client.close()
    seen, invented = out["seen"], out["invented"]
    assert seen.ok and seen.visual and seen.grounded
    assert {"glossy", "violaceous"} <= set(seen.visual_terms)
    assert invented.error_kind == "ungrounded" and "lichen planus" in invented.error
    assert invented.visual and "lichen planus" in invented.unsupported_terms


def test_text_basis_answer_is_checked_as_before(sleeps, red_psoriasis):
    """A model that saw the image but says it answers from the text and uses words the text
    lacks is still marked visual: those words came from somewhere, so an expert looks."""
    from curation.drafting import LLMClient

    answer = "Well-demarcated erythematous plaques with silvery scale on the elbows."
    with FakeLLMServer(responder=_responder(answer, "text")) as server:
        client = LLMClient(base_url=server.url, model="m", vision=True, sleep=sleeps)
        [plain] = draft_items(red_psoriasis, client, question_types=["morphology"])
        client.close()
    assert plain.ok and plain.grounded and not plain.visual and plain.visual_terms == []
    with FakeLLMServer(responder=_responder(answer + " Crusted.", "text")) as server:
        client = LLMClient(base_url=server.url, model="m", vision=True, sleep=sleeps)
        [extra] = draft_items(red_psoriasis, client, question_types=["morphology"])
        client.close()
    assert extra.ok and extra.visual and extra.visual_terms == ["crusted"]


def test_one_pairs_image_is_prepared_once_for_all_its_types(
    make_client, fake_llm, psoriasis, monkeypatch
):
    from curation.drafting import client as client_module

    calls = []
    real = client_module.prepare_image
    monkeypatch.setattr(
        client_module, "prepare_image", lambda data, **kw: calls.append(1) or real(data, **kw)
    )
    source = replace(psoriasis, image=png(900, 600, noise=True))  # re-encoded: worth caching
    drafts = draft_items(
        source, make_client(vision=True), question_types=["morphology", "site", "modality"]
    )
    assert all(d.ok and d.generator.image == "sent" for d in drafts)
    assert len(fake_llm.images) == 3 and {im.mime for im in fake_llm.images} == {"image/jpeg"}
    assert len(calls) == 1
