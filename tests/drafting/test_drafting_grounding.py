"""Grounding: every key term of an answer must come from the textbook's text."""

from __future__ import annotations

import pytest

from curation.drafting import DraftSource, check_grounding, drop_near_duplicates, similarity
from curation.drafting.grounding import vocabulary


@pytest.mark.parametrize(
    "answer",
    [
        "Psoriasis vulgaris with well-demarcated erythematous plaques.",
        "Plaque psoriasis: erythematous, scaly plaques on the elbow.",  # synonym, inflections
        "The image shows silvery scaling on the extensor surface of the elbows.",
        "This 45-year-old woman has psoriasis.",  # reviewed age and sex
        "Topical corticosteroids.",  # from the body-text mention
        "This is a clinical photograph.",
    ],
)
def test_supported_answers_are_grounded(psoriasis, answer):
    g = check_grounding(answer, psoriasis)
    assert g.grounded, g.unsupported_terms


def test_invented_details_are_listed(psoriasis):
    """The MM-Skin failure: a site and a person the caption never mentions."""
    g = check_grounding("Lichen planus located on the thumb of the dermatologist.", psoriasis)
    assert not g.grounded
    assert g.unsupported_terms == ["lichen planus", "thumb", "dermatologist"]


def test_a_diagnosis_is_one_term_and_synonyms_count(psoriasis):
    g = check_grounding("Chronic plaque psoriasis.", psoriasis)
    assert g.key_terms == ["chronic plaque psoriasis"] and g.grounded
    wrong_sex = check_grounding("The patient is a man.", psoriasis)
    assert wrong_sex.unsupported_terms == ["man"]
    wrong_age = check_grounding("A 54-year-old woman.", psoriasis)
    assert wrong_age.unsupported_terms == ["54"]


def test_tolerance_and_plain_texts():
    g = check_grounding("Red plaques on the knee.", ["Plaques on the knee."], max_unsupported=1)
    assert g.grounded and g.unsupported_terms == ["red"]
    assert not check_grounding("Red plaques on the knee.", ["Plaques on the knee."]).grounded


def test_the_extract_vocabulary_is_read():
    pattern, canon = vocabulary()
    assert canon["plaque psoriasis"] == canon["psoriasis vulgaris"] == "psoriasis vulgaris"
    assert pattern.search("a case of guttate psoriasis").group(1) == "guttate psoriasis"


def test_source_texts_cover_caption_subcaption_section_and_mentions():
    source = DraftSource(
        pair_id=1,
        caption="Figure caption words",
        sub_caption="subcaption words",
        section_path=["Chapter words"],
        mentions=["mention words", ""],
    )
    g = check_grounding("caption subcaption chapter mention", source)
    assert g.grounded, g.unsupported_terms


def test_near_duplicate_questions():
    assert similarity("What is the most likely diagnosis?", "What is the likely diagnosis?") == 1
    assert similarity("What is the diagnosis?", "Where are the lesions?") < 0.5
    questions = [
        "What is the most likely diagnosis?",
        "What is the likely diagnosis here?",
        "Where are the lesions located?",
        "What is the most likely diagnosis",
    ]
    kept, dropped = drop_near_duplicates(questions, lambda q: q)
    assert kept == ["What is the most likely diagnosis?", "Where are the lesions located?"]
    assert len(dropped) == 2
    kept, _ = drop_near_duplicates(
        questions[2:3], lambda q: q, existing=["Where are lesions located?"]
    )
    assert kept == []
