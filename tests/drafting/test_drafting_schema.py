"""Every reply is validated here, whatever the server promised about structured outputs."""

from __future__ import annotations

import json

import pytest

from curation.drafting import DRAFT_SCHEMA, JunkOutput, parse_output
from curation.drafting.schema import response_format

GOOD = {"question": "What is shown?", "answer": "Erythematous plaques.", "evidence": "plaques"}


def test_a_valid_reply_is_parsed_and_whitespace_normalised():
    out = parse_output(json.dumps({**GOOD, "answer": "  Erythematous\n plaques. "}))
    assert (out.question, out.answer, out.evidence) == (
        "What is shown?",
        "Erythematous plaques.",
        "plaques",
    )


def test_fenced_json_is_accepted():
    assert parse_output(f"```json\n{json.dumps(GOOD)}\n```").answer == "Erythematous plaques."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("The answer is psoriasis.", "not_json"),
        ('{"question": "What', "not_json"),
        ("I'm sorry, I can't help with that.", "refusal"),
        ("[1, 2]", "schema"),
        (json.dumps({"question": "Q?", "answer": "A."}), "schema"),
        (json.dumps({**GOOD, "confidence": 0.9}), "schema"),
        (json.dumps({**GOOD, "answer": 42}), "schema"),
        (json.dumps({**GOOD, "answer": "x" * 2001}), "schema"),
        (json.dumps({**GOOD, "answer": "  "}), "empty"),
        (json.dumps({**GOOD, "question": ""}), "empty"),
        (json.dumps({**GOOD, "answer": "As an AI, I cannot diagnose images."}), "refusal"),
    ],
)
def test_junk_is_rejected_with_a_reason(text, reason):
    with pytest.raises(JunkOutput) as info:
        parse_output(text)
    assert info.value.reason == reason
    assert info.value.kind == "junk"


def test_a_yes_no_answer_must_start_with_yes_or_no():
    parse_output(json.dumps({**GOOD, "answer": "No, the scale is absent."}), "verification")
    with pytest.raises(JunkOutput, match="Yes or No"):
        parse_output(json.dumps(GOOD), "verification")


def test_the_schema_sent_to_the_server_is_strict_and_closed():
    rf = response_format()
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"] is DRAFT_SCHEMA
    assert DRAFT_SCHEMA["additionalProperties"] is False
    assert set(DRAFT_SCHEMA["required"]) == set(DRAFT_SCHEMA["properties"]) == set(GOOD)
