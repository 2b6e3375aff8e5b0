"""draft_items: the call the Celery task makes, with an LLM or with the offline templates."""

from __future__ import annotations

import pytest

from curation.drafting import Budget, DraftSource, Prices, applicable_types, draft_items
from curation.drafting.testing import Reply, Status


def test_without_an_llm_templates_draft_clearly_labelled_items(psoriasis):
    drafts = draft_items(psoriasis, None)
    assert [d.question_type for d in drafts] == [
        "morphology",
        "diagnosis",
        "modality",
        "demographics",
        "verification",
    ]
    for d in drafts:
        assert d.ok and d.grounded, d
        assert d.generator.kind == "template" and d.generator.model == "template"
        assert d.generator.prompt_version == "template.v1"
        assert d.generator.cost == 0 and d.generator.prompt_tokens == 0
    by_type = {d.question_type: d for d in drafts}
    assert by_type["morphology"].answer.startswith("Psoriasis vulgaris: well-demarcated")
    assert "Fig." not in by_type["morphology"].answer
    assert by_type["demographics"].answer == "The patient is a 45-year-old woman."
    assert by_type["modality"].answer == "This is a clinical photograph."
    assert by_type["verification"].answer.startswith("Yes")
    assert draft_items(psoriasis, None) == drafts, "deterministic"


def test_templates_skip_what_the_fields_do_not_say():
    drafts = draft_items(DraftSource(pair_id=1, caption="Scaly plaques.", sex="m"), None)
    assert [(d.question_type, d.answer) for d in drafts] == [
        ("morphology", "Scaly plaques."),
        ("demographics", "The patient is male."),
    ]
    only = draft_items(
        DraftSource(pair_id=1, caption="x", diagnosis="Acne"), None, question_types=["diagnosis"]
    )
    assert [d.question_type for d in only] == ["diagnosis"]


def test_an_llm_drafts_one_item_per_applicable_type(make_client, psoriasis, fake_llm):
    client = make_client(prices=Prices(prompt_per_1k=1.0, completion_per_1k=2.0))
    drafts = draft_items(psoriasis, client)
    assert [d.question_type for d in drafts] == applicable_types("clinical")
    assert len(fake_llm.requests) == len(drafts)
    for d in drafts:
        assert d.ok and d.grounded, d
        g = d.generator
        assert (g.kind, g.model) == ("llm", "fake-model")
        assert g.prompt_version == f"{d.question_type}.v1"
        assert g.prompt_tokens > 0 and g.completion_tokens > 0 and g.attempts == 1
        assert g.cost == pytest.approx(g.prompt_tokens / 1000 + 2 * g.completion_tokens / 1000)
    verification = next(d for d in drafts if d.question_type == "verification")
    assert verification.answer.startswith("Yes")


def test_question_types_narrow_and_unsuitable_types_are_skipped(make_client, psoriasis):
    drafts = draft_items(psoriasis, make_client(), question_types=["diagnosis", "histopathology"])
    assert [d.question_type for d in drafts] == ["diagnosis"]
    with pytest.raises(ValueError, match="unknown"):
        draft_items(psoriasis, None, question_types=["poetry"])


def test_ungrounded_answers_are_flagged_or_dropped(make_client, psoriasis, fake_llm):
    invented = {
        "question": "Where is the lesion?",
        "answer": "On the thumb of the dermatologist.",
        "evidence": "",
    }
    fake_llm.responder = lambda body, n: Reply(invented)
    [flagged] = draft_items(psoriasis, make_client(), question_types=["site"])
    assert flagged.ok and not flagged.grounded
    assert flagged.unsupported_terms == ["thumb", "dermatologist"]
    [dropped] = draft_items(psoriasis, make_client(), question_types=["site"], drop_ungrounded=True)
    assert dropped.error_kind == "ungrounded" and not dropped.ok


def test_near_duplicate_questions_are_dropped(make_client, psoriasis, fake_llm):
    same = {"question": "What is the diagnosis?", "answer": "Psoriasis vulgaris.", "evidence": ""}
    fake_llm.responder = lambda body, n: Reply(same)
    drafts = draft_items(psoriasis, make_client(), question_types=["diagnosis", "morphology"])
    assert [d.error_kind for d in drafts] == ["", "duplicate"]
    again = draft_items(
        psoriasis,
        make_client(),
        question_types=["diagnosis"],
        existing_questions=["What is the diagnosis here?"],
    )
    assert again[0].error_kind == "duplicate"


def test_junk_is_a_failed_draft_and_the_rest_go_on(make_client, psoriasis, fake_llm):
    fake_llm.script([Reply("junk", usage=(10, 1)), Reply("more junk", usage=(10, 1))])
    drafts = draft_items(psoriasis, make_client(), question_types=["morphology", "diagnosis"])
    assert [d.error_kind for d in drafts] == ["junk", ""]
    assert drafts[0].error.startswith("not_json")
    assert drafts[0].generator.prompt_tokens == 20 and drafts[0].generator.attempts == 2


def test_a_dead_server_fails_the_rest_fast(make_client, psoriasis, fake_llm, sleeps):
    fake_llm.responder = lambda body, n: Status(500)
    drafts = draft_items(psoriasis, make_client(max_attempts=3))
    assert all(d.error_kind == "transport" for d in drafts)
    assert drafts[0].error.startswith("http_500")
    assert all(d.error.startswith("skipped") for d in drafts[1:])
    assert len(fake_llm.requests) == 3, "only the first type tried the server"


def test_budget_stops_drafting_and_counts_failed_attempts(make_client, psoriasis, fake_llm):
    fake_llm.responder = lambda body, n: Reply(
        {"question": f"Question {n}?", "answer": "Psoriasis vulgaris.", "evidence": ""},
        usage=(400, 100),
    )
    budget = Budget(max_tokens=1200)
    drafts = draft_items(psoriasis, make_client(), budget=budget)
    assert [d.error_kind for d in drafts[:3]] == ["", "", ""]
    assert all(d.error_kind == "budget" for d in drafts[3:]) and len(drafts) > 3
    assert budget.spent.total_tokens == 1500 and budget.exhausted()
    assert len(fake_llm.requests) == 3

    money = Budget(max_cost=0.01)
    client = make_client(prices=Prices(prompt_per_1k=0.01, completion_per_1k=0.01))
    fake_llm.script([Reply("junk", usage=(500, 500)), Reply("junk", usage=(500, 500))])
    drafts = draft_items(psoriasis, client, budget=money)
    assert drafts[0].error_kind == "junk" and money.spent.cost == pytest.approx(0.02)
    assert all(d.error_kind == "budget" for d in drafts[1:])


def test_parallel_drafting_keeps_the_order(make_client, psoriasis, fake_llm):
    fake_llm.latency = 0.1
    drafts = draft_items(psoriasis, make_client(concurrency=8), max_parallel=8)
    assert [d.question_type for d in drafts] == applicable_types("clinical")
    assert all(d.ok for d in drafts)
    assert fake_llm.peak_in_flight > 1


def test_drafts_serialise_for_the_database(psoriasis):
    d = draft_items(psoriasis, None)[0].as_dict()
    assert d["generator"]["kind"] == "template"
    assert set(d) >= {"question_type", "question", "answer", "evidence", "grounded", "error_kind"}
