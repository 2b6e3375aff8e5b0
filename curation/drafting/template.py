"""The offline drafter: simple items made from the reviewed fields, with no LLM at all.

It keeps the demo working on a machine with no LLM server. Its items say `kind: "template"`
and `model: "template"` in their generator, so neither the review UI nor a release can take them
for model output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .source import (
    CLINICAL,
    DEMOGRAPHICS,
    DERMOSCOPIC,
    DIAGNOSIS,
    MODALITY,
    MORPHOLOGY,
    PATHOLOGICAL,
    VERIFICATION,
    DraftSource,
)

TEMPLATE_VERSION = "template.v1"
TEMPLATE_TYPES = (MORPHOLOGY, DIAGNOSIS, MODALITY, DEMOGRAPHICS, VERIFICATION)

MODALITY_ANSWER = {
    CLINICAL: "This is a clinical photograph.",
    DERMOSCOPIC: "This is a dermoscopic image.",
    PATHOLOGICAL: "This is a histopathological section.",
}
FIGURE_LABEL = re.compile(r"^\s*(fig(ure)?\.?\s*[\w.\-\u2013]*\d[\w.\-\u2013]*\s*[:.)]?\s*)", re.I)


@dataclass(frozen=True)
class TemplateItem:
    question_type: str
    question: str
    answer: str
    evidence: str


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .;,")
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def template_items(source: DraftSource) -> list[TemplateItem]:
    """Every template item the fields allow, in a fixed order; same input, same output."""
    items: list[TemplateItem] = []
    caption = FIGURE_LABEL.sub("", source.sub_caption or source.caption).strip()
    if caption:
        items.append(
            TemplateItem(
                MORPHOLOGY,
                "What does this image show, as described in the textbook?",
                _sentence(caption),
                source.sub_caption or source.caption,
            )
        )
    if source.diagnosis:
        items.append(
            TemplateItem(
                DIAGNOSIS,
                "What is the diagnosis?",
                _sentence(source.diagnosis),
                f"diagnosis: {source.diagnosis}",
            )
        )
    if source.modality in MODALITY_ANSWER:
        items.append(
            TemplateItem(
                MODALITY,
                "What kind of image is this?",
                MODALITY_ANSWER[source.modality],
                f"modality: {source.modality}",
            )
        )
    if source.age is not None or source.sex:
        person = {"F": "woman", "M": "man"}.get(source.sex, "person")
        if source.age is not None and source.sex:
            answer = f"The patient is a {source.age}-year-old {person}."
        elif source.age is not None:
            answer = f"The patient is {source.age} years old."
        else:
            answer = f"The patient is {source.sex_word}."
        evidence = ", ".join(
            p
            for p in [f"age: {source.age}" if source.age is not None else "", source.sex_word]
            if p
        )
        items.append(
            TemplateItem(DEMOGRAPHICS, "What are the age and sex of the patient?", answer, evidence)
        )
    if source.diagnosis:
        items.append(
            TemplateItem(
                VERIFICATION,
                f"Is this image consistent with {source.diagnosis}?",
                f"Yes, it shows {source.diagnosis}.",
                f"diagnosis: {source.diagnosis}",
            )
        )
    return items
