"""The one output shape a drafting prompt asks for, and its validation.

The schema goes to the server as a structured-outputs `response_format` where supported, but a
server may ignore it (or not support it), so every reply is validated here again. jsonschema is
not a dependency; this fixed, flat schema needs only a few checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .errors import JunkOutput

FIELDS = ("question", "answer", "evidence")
MAX_LENGTH = {"question": 500, "answer": 2000, "evidence": 2000}

# Lengths are checked here only: strict structured outputs accept few string keywords.
DRAFT_SCHEMA: dict = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in FIELDS},
    "required": list(FIELDS),
    "additionalProperties": False,
}


#: Where a vision draft's answer comes from: the text, what is visible, or both.
BASES = ("text", "image", "both")
VISION_SCHEMA: dict = {
    "type": "object",
    "properties": {
        **DRAFT_SCHEMA["properties"],
        "basis": {"type": "string", "enum": list(BASES)},
    },
    "required": [*FIELDS, "basis"],
    "additionalProperties": False,
}


def response_format(vision: bool = False) -> dict:
    """The structured-outputs request (OpenAI `json_schema`, also understood by vLLM/Ollama)."""
    schema = VISION_SCHEMA if vision else DRAFT_SCHEMA
    name = "vqa_item_vision" if vision else "vqa_item"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


@dataclass(frozen=True)
class DraftOutput:
    question: str
    answer: str
    evidence: str
    basis: str = "text"

    @property
    def visual(self) -> bool:
        """The answer says something about what is visible, not only what the text states."""
        return self.basis != "text"


FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)
REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|i cannot|i can'?t|i am unable|i'?m unable|as an ai)\b", re.I
)
YES_NO = re.compile(r"^\s*(yes|no)\b", re.I)


def parse_output(text: str | None, question_type: str = "", vision: bool = False) -> DraftOutput:
    """Parse and validate one reply; raise `JunkOutput` with the reason when it is unusable.

    A reply to a vision prompt must also say its `basis`; a reply to a text prompt is all text.
    """
    if text is None or not text.strip():
        raise JunkOutput("empty", "the reply has no content")
    fenced = FENCE.match(text)  # servers without structured outputs like to fence JSON
    raw = fenced.group(1) if fenced else text.strip()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        kind = "refusal" if REFUSAL.match(raw) else "not_json"
        raise JunkOutput(kind, f"{e.msg} in {raw[:80]!r}") from None
    if not isinstance(data, dict):
        raise JunkOutput("schema", f"expected an object, got {type(data).__name__}")
    expected = (*FIELDS, "basis") if vision else FIELDS
    missing = [f for f in expected if f not in data]
    extra = sorted(set(data) - set(expected))
    if missing or extra:
        raise JunkOutput("schema", f"missing {missing}, unexpected {extra}")
    basis = data.get("basis", "text")
    if basis not in BASES:
        raise JunkOutput("schema", f"basis is {basis!r}, not one of {list(BASES)}")
    for name in FIELDS:
        value = data[name]
        if not isinstance(value, str):
            raise JunkOutput("schema", f"{name} is {type(value).__name__}, not a string")
        if len(value) > MAX_LENGTH[name]:
            raise JunkOutput("schema", f"{name} longer than {MAX_LENGTH[name]} characters")
    out = DraftOutput(*(" ".join(data[name].split()) for name in FIELDS), basis=basis)
    if not out.question:
        raise JunkOutput("empty", "empty question")
    if not out.answer:
        raise JunkOutput("empty", "empty answer")
    if REFUSAL.match(out.answer):
        raise JunkOutput("refusal", out.answer[:80])
    if question_type == "verification" and not YES_NO.match(out.answer):
        raise JunkOutput("schema", "a yes/no question's answer must start with Yes or No")
    return out
