"""`python -m ml merge` then `python -m ml serve`: a tiny model trained here is merged, served
OpenAI-compatibly on 127.0.0.1, and the platform's drafting client drafts from it."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from curation.drafting import DraftSource, LLMClient, draft_items
from curation.drafting.schema import response_format
from ml.cli import main
from ml.serve import ChatServer, Generator

from .conftest import run_stage

ROOT = Path(__file__).resolve().parents[2]


def _png_uri(colour=(200, 40, 40)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def merged(tmp_path_factory, tiny_model_dirs, release_dir) -> Path:
    run = tmp_path_factory.mktemp("serve-sft")
    assert run_stage("sft", tiny_model_dirs["llava"], release_dir, run, "train.max_steps=2") == 0
    out = tmp_path_factory.mktemp("serve-merged") / "skinvl-tiny"
    assert main(["merge", "--run", str(run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def generator(merged) -> Generator:
    return Generator(merged)


@pytest.fixture
def server(generator):
    generator.vision = True
    with ChatServer(generator, "skinvl-tiny", port=0, max_body_bytes=2_000_000) as s:
        yield s
    generator.vision = True


def _post(url: str, body: bytes | dict, path: str = "/chat/completions") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _chat(content, **extra) -> dict:
    return {"model": "skinvl-tiny", "messages": [{"role": "user", "content": content}], **extra}


def test_serves_models_and_a_chat_completion_with_an_image(server):
    with urllib.request.urlopen(server.url + "/models", timeout=10) as r:
        models = json.loads(r.read())
    assert [m["id"] for m in models["data"]] == ["skinvl-tiny"]
    parts = [{"type": "text", "text": "Describe the findings."},
             {"type": "image_url", "image_url": {"url": _png_uri()}}]  # fmt: skip
    status, body = _post(server.url, _chat(parts, max_tokens=5, temperature=0))
    assert status == 200, body
    choice = body["choices"][0]
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert body["usage"]["prompt_tokens"] > 0 and 0 < body["usage"]["completion_tokens"] <= 5
    assert server.stats.images == 1


def test_seeded_sampling_repeats(server):
    body = _chat("What is the diagnosis?", max_tokens=6, temperature=0.9, seed=3)
    first, second = _post(server.url, body)[1], _post(server.url, body)[1]
    assert first["choices"][0]["message"] == second["choices"][0]["message"]


def test_structured_outputs_give_json_of_the_schema(server):
    parts = [{"type": "image_url", "image_url": {"url": _png_uri()}},
             {"type": "text", "text": "Write a VQA item."}]  # fmt: skip
    rf = response_format(vision=True)
    status, body = _post(server.url, _chat(parts, max_tokens=40, response_format=rf))
    assert status == 200, body
    item = json.loads(body["choices"][0]["message"]["content"])
    assert set(item) == {"question", "answer", "evidence", "basis"}
    assert item["basis"] in ("text", "image", "both")
    assert all(item[k].strip() for k in ("question", "answer", "evidence"))


@pytest.fixture
def source() -> DraftSource:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (190, 60, 50)).save(buf, "PNG")
    return DraftSource(
        pair_id=1,
        caption="Fig. 1 Plaque psoriasis on the elbow.",
        modality="clinical",
        diagnosis="psoriasis",
        image=buf.getvalue(),
    )


@pytest.mark.parametrize("vision", [True, False])
def test_the_drafting_client_drafts_from_the_served_checkpoint(server, source, vision):
    client = LLMClient(base_url=server.url, model="skinvl-tiny", timeout=120, vision=vision)
    try:
        [d] = draft_items(source, client, question_types=["morphology"])
    finally:
        client.close()
    assert d.ok, d.error
    assert d.question and d.answer
    assert d.generator.model == "skinvl-tiny" and d.generator.prompt_tokens > 0
    assert d.generator.image == ("sent" if vision else "")
    assert server.stats.images == (1 if vision else 0)
    assert d.generator.prompt_version == ("morphology.vision.v1" if vision else "morphology.v1")


def test_a_text_only_checkpoint_refuses_images_and_drafting_falls_back(server, source):
    server.generator.vision = False  # as a checkpoint without an image processor
    client = LLMClient(base_url=server.url, model="skinvl-tiny", timeout=120, vision=True)
    try:
        [d] = draft_items(source, client, question_types=["morphology"])
    finally:
        client.close()
    assert d.ok, d.error
    assert d.generator.image == "fallback"
    assert d.generator.image_note == "server_refused_image: http_400"
    assert server.stats.images == 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (_chat("hi", model="other"), 404, "not served"),
        (_chat([{"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}]), 400, "data:"),
        (_chat([{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]), 400,
         "does not decode"),
        (_chat([{"type": "input_audio"}]), 400, "unsupported content part"),
        ({"model": "skinvl-tiny", "messages": []}, 400, "non-empty"),
        (_chat("hi", max_tokens="many"), 400, "numbers"),
        (_chat("hi", response_format={"type": "json_object"}), 400, "json_schema"),
        (b"x" * 2_000_001, 413, "body over"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_error_bodies(server, body, status, words):
    got, answer = _post(server.url, body)
    assert got == status
    assert words in answer["error"]["message"]
    assert server.stats.requests == 0  # nothing reached the model


def test_unknown_route_is_404(server):
    assert _post(server.url, _chat("hi"), path="/completions")[0] == 404


def test_serve_refuses_a_folder_that_is_no_checkpoint(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path)]) == 1
    assert "not a checkpoint folder" in capsys.readouterr().err


def test_python_m_ml_serve_runs_and_answers(merged):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ml", "serve", "--model", str(merged), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        line = proc.stdout.readline()
        started = json.loads(line)
        assert started["serving"] == "skinvl-tiny"
        status, body = _post(started["url"], _chat("Describe it.", max_tokens=3))
        assert status == 200 and body["model"] == "skinvl-tiny"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
