"""Prompt files: one per question type, versioned, never edited once released."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest

from curation.drafting import QUESTION_TYPES, DraftSource, applicable_types, prompt_versions
from curation.drafting.prompting import PromptError, all_prompts, get_prompt, parse_prompt

PROMPTS = resources.files("curation.drafting").joinpath("prompts")


def test_every_question_type_has_a_current_prompt_with_its_version():
    versions = prompt_versions()
    assert set(versions) == set(QUESTION_TYPES)
    for qt, version in versions.items():
        assert version.startswith(f"{qt}.v")
        assert get_prompt(qt).question_type == qt


def test_released_prompt_files_are_unchanged():
    """Editing a released prompt would silently change drafts that carry its version."""
    lock = json.loads(PROMPTS.joinpath("lock.json").read_text("utf-8"))
    files = {p.name for p in PROMPTS.iterdir() if p.name.endswith(".txt")}
    assert files == set(lock), "add the new prompt file to prompts/lock.json"
    for name, digest in lock.items():
        actual = hashlib.sha256(PROMPTS.joinpath(name).read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed: write {name} as a new version instead"


@pytest.mark.parametrize(
    ("modality", "present", "absent"),
    [
        ("clinical", {"site", "morphology", "modality"}, {"histopathology", "dermoscopy"}),
        ("dermoscopic", {"dermoscopy", "site"}, {"histopathology"}),
        ("pathological", {"histopathology", "modality"}, {"dermoscopy", "site"}),
        ("", {"diagnosis", "verification"}, {"modality", "histopathology", "dermoscopy", "site"}),
    ],
)
def test_types_depend_on_modality(modality, present, absent):
    types = applicable_types(modality)
    assert present <= set(types)
    assert not absent & set(types)
    assert types == [t for t in QUESTION_TYPES if t in types], "kept in drafting order"


def test_messages_carry_the_source_and_say_what_is_missing(psoriasis):
    system, user = get_prompt("diagnosis").messages(psoriasis)
    assert system["role"] == "system" and "Never invent" in system["content"]
    text = user["content"]
    for part in [
        "Psoriasis vulgaris: well-demarcated",
        "Papulosquamous disorders > Psoriasis",
        "- Chronic plaque psoriasis is treated",
        "Sample Dermatology (2nd)",
        "45 years, female",
        "Image modality: clinical",
    ]:
        assert part in text
    bare = get_prompt("diagnosis").messages(DraftSource(pair_id=1, caption="A plaque."))[1]
    assert "Panel sub-caption: (none)" in bare["content"]
    assert "Patient: (not given)" in bare["content"]
    assert "$" not in bare["content"]


def test_a_caption_with_a_dollar_sign_is_not_a_placeholder():
    source = DraftSource(pair_id=1, caption="Cost $caption and ${book} stay literal.")
    assert (
        "Cost $caption and ${book} stay literal."
        in get_prompt("morphology").messages(source)[1]["content"]
    )


def test_verification_prompt_asks_for_yes_or_no():
    assert "yes/no" in get_prompt("verification").user


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("diagnosis.txt", "", "named"),
        ("diagnosis.v2.txt", "question_type: diagnosis\nversion: diagnosis.v2\n", "system"),
        (
            "diagnosis.v2.txt",
            "question_type: diagnosis\nversion: diagnosis.v1\nmodalities: clinical\n"
            "--- system\nx\n--- user\ny\n",
            "version",
        ),
        (
            "diagnosis.v2.txt",
            "question_type: diagnosis\nversion: diagnosis.v2\n--- system\nx\n--- user\ny\n",
            "modalities",
        ),
        (
            "diagnosis.v2.txt",
            "question_type: diagnosis\nversion: diagnosis.v2\nmodalities: clinical\n"
            "--- system\nx\n--- user\n$nonsense\n",
            "placeholder",
        ),
    ],
)
def test_malformed_prompt_files_fail_at_load(name, text, message):
    with pytest.raises(PromptError, match=message):
        parse_prompt(name, text)


def test_all_shipped_files_parse():
    assert len(all_prompts()) >= len(QUESTION_TYPES)
