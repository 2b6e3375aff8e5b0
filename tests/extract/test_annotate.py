from __future__ import annotations

import pytest

from curation.extract.annotate import (
    age_sex,
    diagnosis,
    modality_from_text,
    norm_label,
    parse_label,
    split_subcaptions,
)
from curation.extract.mentions import find_refs


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Fig. 3.2 Psoriasis", "3.2"),
        ("Figure 7-26. Lichen planus", "7-26"),
        ("FIG. 12 Melanoma", "12"),
        ("Fig.3.2: Psoriasis", "3.2"),
        ("Figures are shown", None),
        ("Table 3.1 Features", None),
        ("\u25a0 Fig. 3.2 Psoriasis", "3.2"),
        ("Fig. 3 | Psoriasis", "3"),
        ("Abb. 4.1 Psoriasis", "4.1"),
    ],
)
def test_parse_label(text, label):
    got = parse_label(text)
    assert (got[0] if got else None) == label


def test_split_subcaptions_variants():
    lead, subs = split_subcaptions("Fig. 1 Acne. (a) Face. (b) Back (H&E, x100). (c) Chest.")
    assert lead == "Fig. 1 Acne."
    assert subs == {"a": "Face.", "b": "Back (H&E, x100).", "c": "Chest."}
    _, subs = split_subcaptions("Fig. 2 Wart. (A, B) Clinical views. (C) Dermoscopy.")
    assert subs == {"a": "Clinical views.", "b": "Clinical views.", "c": "Dermoscopy."}
    _, subs = split_subcaptions("Fig. 3 Naevus (a\u2013c) three sites. (d) Histology.")
    assert set(subs) == {"a", "b", "c", "d"}
    assert split_subcaptions("Fig. 4 Psoriasis (F, 41) on the knee (H&E).")[1] == {}
    lead, subs = split_subcaptions("Fig. 5 Psoriasis. A Plaques on the knee. B, Nail pitting.")
    assert lead == "Fig. 5 Psoriasis." and subs == {
        "a": "Plaques on the knee.",
        "b": "Nail pitting.",
    }
    assert split_subcaptions("Fig. 6 Naevus. A Close-up of the border.")[1] == {}
    assert split_subcaptions("Fig. 7 Acne. A 45-year-old man. B Later.")[1] == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Psoriasis in a 45-year-old man", (45, "male")),
        ("Lesion in a 7-year-old girl", (7, "female")),
        ("Psoriasis (F, 62).", (62, "female")),
        ("Naevus (34, M)", (34, "male")),
        ("Eczema in an elderly woman", (None, "female")),
        ("Haemangioma in a 6-month-old infant", (0, None)),
        ("Histopathology (H&E, x200)", (None, None)),
    ],
)
def test_age_sex(text, expected):
    assert age_sex(text) == expected


def test_modality_keywords():
    assert modality_from_text("Dermoscopy showing dotted vessels")[0] == "dermoscopic"
    assert modality_from_text("Biopsy specimen (H&E, \u00d7200)")[0] == "pathological"
    assert modality_from_text("Clinical photograph of a plaque")[0] == "clinical"
    assert modality_from_text("Close-up of a nodule")[0] is None


def test_diagnosis_prefers_first_and_longest():
    assert diagnosis("Blue nevus with surface telangiectasia") == "Blue nevus"
    assert diagnosis("Psoriasis vulgaris on the knee") == "Psoriasis vulgaris"
    assert diagnosis("Seborrhoeic keratosis of the temple") == "Seborrheic keratosis"
    assert diagnosis("A plaque", ["Chapter 2 Eczema", "2.1 Atopic Dermatitis"]) == (
        "Atopic dermatitis"
    )
    assert diagnosis("A plaque") == ""


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("as shown in Fig. 3.2.", ["3.2"]),
        ("(see Fig. 3.4a, b)", ["3.4"]),
        ("compare Figs. 3.2\u20133.4 and the text", ["3.2", "3.3", "3.4"]),
        ("Figures 3.2 and 3.5 show", ["3.2", "3.5"]),
        ("(see Figure 7-26)", ["7.26"]),
        ("Figs. 5-1 to 5-3", ["5.1", "5.2", "5.3"]),
        ("Fig. 3.2, 45 patients had it", ["3.2"]),
        ("fig. 12 and Figure 14", ["12", "14"]),
        ("Figure skating injuries", []),
    ],
)
def test_find_refs(text, labels):
    assert find_refs(text) == labels


def test_norm_label():
    assert norm_label("7-26") == norm_label("7.26") == norm_label("7\u201326")
