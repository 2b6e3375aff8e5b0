"""The real openai client against the fake server: retries, backoff, junk, usage and cost."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import time

import pytest

from curation.drafting import JunkOutput, LLMClient, Prices, TransportFailure, get_prompt
from curation.drafting.testing import Drop, Garbage, Reply, Status

GOOD = {
    "question": "What is the most likely diagnosis?",
    "answer": "Psoriasis vulgaris, with erythematous plaques and silvery scale.",
    "evidence": "Psoriasis vulgaris: well-demarcated erythematous plaques with silvery scale",
}
DIAGNOSIS = get_prompt("diagnosis")


def test_a_good_reply_returns_the_draft_with_usage_and_cost(fake_llm, make_client, psoriasis):
    fake_llm.script([Reply(GOOD, usage=(1200, 300))])
    client = make_client(prices=Prices(prompt_per_1k=0.5, completion_per_1k=1.5), api_key="k-1")
    result = client.complete(DIAGNOSIS, psoriasis)
    assert result.output.answer == GOOD["answer"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1200, 300)
    assert result.usage.cost == pytest.approx(1.2 * 0.5 + 0.3 * 1.5)
    assert result.attempts == 1
    body = fake_llm.requests[0]
    assert body["model"] == "fake-model"
    assert body["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_without_structured_outputs_support_it_falls_back_once(make_client, psoriasis, fake_llm):
    fake_llm.reject_json_schema = True
    fake_llm.responder = lambda body, n: Reply(GOOD)
    client = make_client()
    assert client.complete(DIAGNOSIS, psoriasis).output.question == GOOD["question"]
    assert client.complete(DIAGNOSIS, psoriasis).attempts == 1, "remembered"
    formats = [r.get("response_format") for r in fake_llm.requests]
    assert formats[0]["type"] == "json_schema" and formats[1:] == [None, None]


def test_structured_outputs_can_be_switched_off(make_client, psoriasis, fake_llm):
    fake_llm.script([Reply(GOOD)])
    make_client(structured_outputs=False).complete(DIAGNOSIS, psoriasis)
    assert "response_format" not in fake_llm.requests[0]


def test_429_then_success_backs_off_and_honours_retry_after(
    make_client, psoriasis, fake_llm, sleeps, caplog
):
    fake_llm.script([Status(429, {"Retry-After": "2"}), Status(429), Reply(GOOD)])
    client = make_client(backoff_base=0.5, rng=random.Random(1))
    with caplog.at_level(logging.WARNING, logger="curation.drafting.client"):
        result = client.complete(DIAGNOSIS, psoriasis)
    assert result.attempts == 3 and len(fake_llm.requests) == 3
    assert len(sleeps) == 2
    assert sleeps[0] >= 2.0, "Retry-After is a floor"
    assert 0 <= sleeps[1] <= 1.0, "full jitter within base * 2**1"
    assert sum("http_429" in r.message for r in caplog.records) == 2
    assert client.stats.retries == 2


def test_500_storm_gives_up_after_max_attempts_with_growing_backoff(
    make_client, psoriasis, fake_llm, sleeps
):
    fake_llm.responder = lambda body, n: Status(500)
    client = make_client(max_attempts=4, backoff_base=1.0, backoff_cap=3.0, rng=random.Random(0))
    with pytest.raises(TransportFailure) as info:
        client.complete(DIAGNOSIS, psoriasis)
    assert info.value.reason == "http_500" and info.value.kind == "transport"
    assert info.value.attempts == 4 and len(fake_llm.requests) == 4
    assert len(sleeps) == 3
    for retry, delay in enumerate(sleeps, start=1):
        assert 0 <= delay <= min(3.0, 1.0 * 2 ** (retry - 1))


def test_backoff_is_full_jitter_under_the_cap():
    client = LLMClient(
        base_url="http://127.0.0.1:9/v1",
        model="m",
        backoff_base=0.5,
        backoff_cap=4.0,
        rng=random.Random(3),
    )
    delays = [client.backoff(5) for _ in range(200)]
    assert max(delays) <= 4.0 and min(delays) >= 0
    assert max(delays) > 3.0 and min(delays) < 1.0, "spread over the whole range"
    assert client.backoff(1, retry_after=100.0) == 4.0, "Retry-After is capped too"
    client.close()


def test_a_reply_slower_than_the_timeout_is_retried(make_client, psoriasis, fake_llm, sleeps):
    fake_llm.script([Reply(GOOD, delay=1.5), Reply(GOOD)])
    client = make_client(timeout=0.3)
    started = time.monotonic()
    result = client.complete(DIAGNOSIS, psoriasis)
    assert result.attempts == 2 and len(sleeps) == 1
    assert time.monotonic() - started < 1.4, "the client did not wait for the slow reply"


def test_timeouts_every_time_end_in_a_timeout_failure(make_client, psoriasis, fake_llm):
    fake_llm.responder = lambda body, n: Reply(GOOD, delay=1.0)
    with pytest.raises(TransportFailure) as info:
        make_client(timeout=0.2, max_attempts=2).complete(DIAGNOSIS, psoriasis)
    assert info.value.reason == "timeout" and info.value.attempts == 2


@pytest.mark.parametrize("action", [Drop(), Garbage()])
def test_dropped_connections_and_garbage_bodies_are_retried(
    make_client, psoriasis, fake_llm, action
):
    fake_llm.script([action, Reply(GOOD)])
    assert make_client().complete(DIAGNOSIS, psoriasis).attempts == 2


def test_a_client_error_is_not_retried(make_client, psoriasis, fake_llm, sleeps):
    fake_llm.script([Status(401)])
    with pytest.raises(TransportFailure) as info:
        make_client().complete(DIAGNOSIS, psoriasis)
    assert info.value.reason == "http_401"
    assert len(fake_llm.requests) == 1 and sleeps == []


def test_no_server_at_all_is_a_connection_failure(psoriasis, sleeps):
    client = LLMClient(base_url="http://127.0.0.1:9/v1", model="m", sleep=sleeps, max_attempts=2)
    with pytest.raises(TransportFailure) as info:
        client.complete(DIAGNOSIS, psoriasis)
    assert info.value.reason == "connection" and len(sleeps) == 1
    client.close()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply("Psoriasis, clearly."), "not_json"),
        (Reply({"question": "Q?"}), "schema"),
        (Reply({**GOOD, "answer": ""}), "empty"),
        (Reply(None), "empty"),
        (Reply(None, refusal="I can't help with that."), "refusal"),
        (Reply('{"question": "What is', finish_reason="length"), "truncated"),
        (Reply(GOOD, finish_reason="content_filter"), "refusal"),
    ],
)
def test_junk_is_retried_once_then_reported_with_its_cost(
    make_client, psoriasis, fake_llm, reply, reason
):
    reply.usage = (100, 10)
    fake_llm.responder = lambda body, n: reply
    client = make_client(prices=Prices(prompt_per_1k=1.0, completion_per_1k=1.0))
    with pytest.raises(JunkOutput) as info:
        client.complete(DIAGNOSIS, psoriasis)
    assert info.value.reason == reason and info.value.kind == "junk"
    assert len(fake_llm.requests) == 2, "one retry for junk"
    assert info.value.usage.prompt_tokens == 200 and info.value.usage.cost == pytest.approx(0.22)


def test_junk_then_good_succeeds_and_counts_both_attempts(make_client, psoriasis, fake_llm):
    fake_llm.script([Reply("nonsense", usage=(100, 5)), Reply(GOOD, usage=(100, 20))])
    result = make_client().complete(DIAGNOSIS, psoriasis)
    assert result.attempts == 2
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (200, 25)


def test_concurrency_is_capped_per_worker(fake_llm, psoriasis):
    fake_llm.latency = 0.15
    fake_llm.responder = lambda body, n: Reply(GOOD)
    client = LLMClient(base_url=fake_llm.url, model="m", concurrency=3)
    # A second client for the same server in this process shares the same slots.
    other = LLMClient(base_url=fake_llm.url, model="m", concurrency=3)
    assert other.semaphore is client.semaphore
    threads = [
        threading.Thread(target=c.complete, args=(DIAGNOSIS, psoriasis))
        for c in [client, other] * 4
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_llm.requests) == 8
    assert fake_llm.peak_in_flight == 3
    assert client.stats.peak_in_flight <= 3
    client.close()
    other.close()


class CountingLimiter:
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> float:
        self.calls += 1
        return 0.0


def test_every_request_including_retries_passes_the_rate_limiter(make_client, psoriasis, fake_llm):
    fake_llm.script([Status(503), Reply(GOOD)])
    limiter = CountingLimiter()
    make_client(rate_limiter=limiter).complete(DIAGNOSIS, psoriasis)
    assert limiter.calls == 2


def test_constructor_refuses_a_missing_server_or_model():
    with pytest.raises(ValueError):
        LLMClient(base_url="", model="m")
    with pytest.raises(ValueError):
        LLMClient(base_url="http://x/v1", model="")


def test_the_drafting_package_imports_no_django():
    code = (
        "import sys, curation.drafting, curation.drafting.testing; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'django')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
