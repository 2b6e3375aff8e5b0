"""Drafting wired to the platform: on accept, idempotent, on a budget, failures kept apart."""

import pytest

from curation.drafting.testing import FakeLLMServer, Garbage
from curation.models import Pair, ProjectSettings, ReviewEvent, VQAItem
from curation.services import review as review_service
from tests.factories import make_book, make_pairs


@pytest.fixture
def llm_off(settings):
    from workers.llm import _client

    settings.LLM_BASE_URL = ""
    _client.cache_clear()
    yield
    _client.cache_clear()


@pytest.fixture
def fake_llm(settings):
    from workers.llm import _client

    with FakeLLMServer() as server:
        settings.LLM_BASE_URL = server.url
        settings.LLM_MODEL = "fake-model"
        settings.LLM_API_KEY = "k"
        settings.LLM_TIMEOUT = 5
        settings.LLM_PRICE_PROMPT_PER_1K = 0.5
        _client.cache_clear()
        yield server
    _client.cache_clear()


@pytest.fixture
def accepted(transactional_db, eager_celery, make_user):
    def accept(n=1):
        expert = make_user(f"e{VQAItem.objects.count()}{Pair.objects.count()}", "expert")
        pairs = make_pairs(make_book(), n)
        for pair in pairs:
            review_service.review_pair(pair.pk, expert, version=1, action="accept")
        return pairs

    return accept


def test_accepting_a_pair_drafts_template_items_once(llm_off, accepted):
    (pair,) = accepted()
    items = VQAItem.objects.filter(pair=pair)
    assert items.count() >= 4
    assert {i.generator["kind"] for i in items} == {"template"}
    assert {i.prompt_version for i in items} == {"template.v1"}
    first = items.first()
    assert first.draft == {"question": first.question, "answer": first.answer,
                           "evidence": first.evidence}  # fmt: skip
    from workers.llm import draft_pair

    assert draft_pair(pair.pk) == 0  # nothing new at the same prompt version
    assert VQAItem.objects.filter(pair=pair).count() == items.count()


def test_llm_drafts_record_model_tokens_cost_and_charge_the_ledger(fake_llm, accepted):
    (pair,) = accepted()
    items = list(VQAItem.objects.filter(pair=pair))
    assert items and all(i.generator["kind"] == "llm" for i in items)
    assert all(i.generator["model"] == "fake-model" for i in items)
    assert all(i.prompt_version.endswith(".v1") for i in items)
    ledger = ProjectSettings.current()
    assert ledger.llm_tokens_spent == sum(
        i.generator["prompt_tokens"] + i.generator["completion_tokens"] for i in items
    )
    assert ledger.llm_cost_spent > 0
    assert len(fake_llm.requests) == len(items)


def test_budget_stops_drafting(fake_llm, accepted, settings):
    settings.LLM_BUDGET_TOKENS = 1
    first, second = accepted(2)
    assert VQAItem.objects.filter(pair=first).exists()  # the first request spends the budget
    assert not VQAItem.objects.filter(pair=second).exists()


def test_junk_from_the_llm_stores_nothing_and_says_why(fake_llm, accepted):
    fake_llm.script([Garbage()] * 200)
    (pair,) = accepted()
    assert not VQAItem.objects.filter(pair=pair).exists()
    event = ReviewEvent.objects.get(target_type="pair", target_id=pair.pk, action="vqa.drafted")
    assert "transport" in event.note or "junk" in event.note
    pair.refresh_from_db()
    assert pair.status == "accepted"  # the expert's decision is untouched


def test_curators_queue_drafting_for_a_selection(llm_off, transactional_db, eager_celery,
                                                 api_client_for, settings):  # fmt: skip
    settings.DRAFT_ON_ACCEPT = False
    pairs = make_pairs(make_book(), 3)
    Pair.objects.filter(pk__in=[pairs[0].pk, pairs[1].pk]).update(status="accepted")
    api = api_client_for("curator")
    response = api.post("/api/pairs/draft/", {"pairs": [p.pk for p in pairs]}, format="json")
    assert response.status_code == 202 and response.json() == {"queued": 2}
    assert VQAItem.objects.filter(pair=pairs[2]).count() == 0
    assert VQAItem.objects.filter(pair=pairs[0]).count() > 0
    expert = api_client_for("expert")
    assert expert.post("/api/pairs/draft/", {"pairs": [1]}, format="json").status_code == 403
