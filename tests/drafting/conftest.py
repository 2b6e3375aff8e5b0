"""Fixtures for the drafting library: a fake LLM server, recorded sleeps, real Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from curation.drafting import DraftSource, LLMClient
from curation.drafting.testing import FakeLLMServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("DRAFTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture
def fake_llm():
    with FakeLLMServer() as server:
        yield server


class Sleeps(list):
    """Stands in for time.sleep: records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(fake_llm, sleeps):
    clients = []

    def make(**kwargs) -> LLMClient:
        options = {"base_url": fake_llm.url, "model": "fake-model", "timeout": 2.0}
        options["sleep"] = sleeps
        options.update(kwargs)
        client = LLMClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def psoriasis() -> DraftSource:
    return DraftSource(
        pair_id=7,
        caption="Fig. 3.2 Psoriasis vulgaris: well-demarcated erythematous plaques with silvery "
        "scale on the extensor surface of the elbows.",
        sub_caption="",
        section_path=("Papulosquamous disorders", "Psoriasis"),
        mentions=("Chronic plaque psoriasis is treated with topical corticosteroids (Fig. 3.2).",),
        book_title="Sample Dermatology",
        book_edition="2nd",
        modality="clinical",
        diagnosis="Psoriasis vulgaris",
        age=45,
        sex="F",
    )


@pytest.fixture
def redis_client():
    """Real Redis, db 9; skipped only off CI when Redis is down. Keys are cleaned up."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        if IN_CI:
            pytest.fail(f"CI=true but Redis at {REDIS_URL} is unavailable: {e}")
        pytest.skip(f"Redis at {REDIS_URL} is unavailable: {e}")
    prefix = f"test:drafting:{uuid.uuid4().hex}"
    client.test_prefix = prefix
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
