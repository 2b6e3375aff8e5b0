"""Zero-shot diagnosis classification: the label set, the matching and the scores, checked on
hand-made answers whose right scores are worked out in the comments."""

from __future__ import annotations

import json

import pytest

from ml.metrics import (
    Prediction,
    classification_scores,
    evaluate,
    match_label,
    normalize_label,
)
from tests.ml.conftest import write_release

LABELS = ["basal cell carcinoma", "melanoma", "nevus", "psoriasis"]


def test_normalize_label_folds_case_and_whitespace():
    assert normalize_label("  Basal  cell\n\tCARCINOMA ") == "basal cell carcinoma"
    assert normalize_label("") == ""


def test_match_label_normalises_answer_and_labels():
    assert match_label("BASAL   cell\ncarcinoma, nodular type", LABELS) == "basal cell carcinoma"
    assert match_label("A nevus.", ["  Nevus "]) == "  Nevus "  # the label as given comes back
    # The known weakness: a negated mention is still a hit, the earliest label wins.
    assert match_label("Not melanoma; a benign nevus.", LABELS) == "melanoma"
    assert match_label("I cannot tell.", LABELS) is None


def test_macro_f1_counts_a_predicted_class_without_gold_items():
    # gold a, b; predicted c, b. Classes a, b, c (gold or predicted): F1 a = 0, b = 1, c = 0
    # -> macro 1/3. Balanced accuracy averages recall over the gold classes a, b: (0 + 1) / 2.
    s = classification_scores(["a", "b"], ["c", "b"])
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(1 / 3)
    assert s["balanced_accuracy"] == pytest.approx(0.5)
    assert s["unmatched"] == 0


def test_diagnosis_scores_per_modality_on_hand_made_answers():
    preds = [
        # clinical: all three right (the third only because negation counts as a hit)
        Prediction("psoriasis", "Plaque PSORIASIS on the elbow.", "clinical", label="psoriasis"),
        Prediction(
            "bcc", "basal cell\n carcinoma, nodular", "clinical", label="basal cell carcinoma"
        ),
        Prediction("melanoma", "It is not melanoma; a nevus.", "clinical", label="melanoma"),
        # dermoscopic: wrong, right, no label found
        Prediction("melanoma", "Benign nevus.", "dermoscopic", label="melanoma"),
        Prediction("nevus", "nevus", "dermoscopic", label="nevus"),
        Prediction("melanoma", "I cannot tell.", "dermoscopic", label="melanoma"),
    ]
    out = evaluate(preds, labels=LABELS)
    overall = out["all"]["classification"]
    # Overall: 4 of 6 right. Per class (tp, fp, fn): psoriasis (1,0,0) F1 1, recall 1;
    # bcc (1,0,0) F1 1, recall 1; melanoma (1,0,2) P 1, R 1/3, F1 1/2; nevus (1,1,0) P 1/2,
    # R 1, F1 2/3. Macro-F1 = (1 + 1 + 1/2 + 2/3) / 4; balanced = (1 + 1 + 1/3 + 1) / 4.
    assert overall["accuracy"] == pytest.approx(4 / 6)
    assert overall["macro_f1"] == pytest.approx((1 + 1 + 0.5 + 2 / 3) / 4)
    assert overall["balanced_accuracy"] == pytest.approx((1 + 1 + 1 / 3 + 1) / 4)
    assert overall["n"] == 6 and overall["unmatched"] == 1
    clinical = out["clinical"]["classification"]
    assert clinical["accuracy"] == clinical["macro_f1"] == clinical["balanced_accuracy"] == 1.0
    # Dermoscopic: gold melanoma, nevus, melanoma; predicted nevus, nevus, none.
    # melanoma: F1 0, recall 0; nevus (1,1,0): F1 2/3, recall 1.
    derm = out["dermoscopic"]["classification"]
    assert derm["accuracy"] == pytest.approx(1 / 3)
    assert derm["macro_f1"] == pytest.approx(1 / 3)
    assert derm["balanced_accuracy"] == pytest.approx(0.5)
    assert derm["unmatched"] == 1


def _release_with_diagnoses(tmp_path):
    """16 pairs; the test split is p3, p15 (clinical), p7 (dermoscopic), p11 (pathological).
    Their diagnoses are rewritten with case and whitespace variants, and one is missing."""
    from ml.release import Release

    root = write_release(tmp_path / "rel", n_pairs=16)
    rows = [json.loads(line) for line in (root / "pairs.jsonl").read_text().splitlines()]
    rewrite = {"p3": "Melanoma", "p7": " basal cell\tcarcinoma ", "p11": None, "p15": "melanoma "}
    for row in rows:
        if row["id"] in rewrite:
            row["diagnosis"] = rewrite[row["id"]]
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Release(root, verify=False)  # the rewrite no longer matches the manifest


def test_label_set_is_the_test_split_diagnoses_normalised(tmp_path):
    from ml.evaluate import DIAGNOSIS_TASK, diagnosis_labels, eval_items

    release = _release_with_diagnoses(tmp_path)
    # psoriasis is a diagnosis of train pairs only; p11 has none.
    assert diagnosis_labels(release, "test") == ["basal cell carcinoma", "melanoma"]
    items = [it for it in eval_items(release, "test") if it["question_type"] == DIAGNOSIS_TASK]
    assert sorted(it["label"] for it in items) == [
        "basal cell carcinoma",
        "melanoma",
        "melanoma",
    ]


def test_run_eval_reports_diagnosis_classification_with_decoding(tmp_path, monkeypatch):
    import ml.evaluate as ev
    from ml.config import config_from_dict

    release = _release_with_diagnoses(tmp_path)
    answers = {
        "Melanoma": "Melanoma, most likely.",  # p3, clinical: right
        "melanoma ": "It looks like basal cell carcinoma.",  # p15, clinical: wrong
        " basal cell\tcarcinoma ": "basal cell carcinoma",  # p7, dermoscopic: right
    }

    def fake_generate(model, processor, items, cfg, device):
        out = []
        for it in items:
            if it["question_type"] == ev.DIAGNOSIS_TASK:
                out.append(answers[it["reference"]])
            elif it["question_type"] == ev.MODALITY_TASK:
                out.append("A clinical photograph.")
            else:
                out.append(it["reference"])
        return out

    monkeypatch.setattr(ev, "load_for_eval", lambda cfg, device: (None, None))
    monkeypatch.setattr(ev, "generate", fake_generate)
    cfg = config_from_dict(
        {
            "model": {"path": "unused", "dtype": "float32"},
            "data": {"release": str(release.root), "verify": False},
            "train": {"output_dir": str(tmp_path / "eval")},
            "eval": {"max_new_tokens": 7, "num_beams": 1},
        }
    )
    scores = ev.run_eval(cfg)
    assert json.loads((tmp_path / "eval" / "eval.json").read_text()) == json.loads(
        json.dumps(scores)
    )
    dx = scores[ev.DIAGNOSIS_TASK]
    assert dx["labels"] == ["basal cell carcinoma", "melanoma"]
    assert dx["prompt"] == ev.DIAGNOSIS_PROMPT and "substring" in dx["matching"]
    assert dx["decoding"]["max_new_tokens"] == 7 and dx["decoding"]["do_sample"] is False
    # Overall: gold mel, bcc, mel; predicted mel, bcc, bcc. mel (1,0,1) F1 2/3, recall 1/2;
    # bcc (1,1,0) F1 2/3, recall 1.
    overall = dx["all"]["classification"]
    assert overall["accuracy"] == pytest.approx(2 / 3)
    assert overall["macro_f1"] == pytest.approx(2 / 3)
    assert overall["balanced_accuracy"] == pytest.approx(0.75)
    # Clinical: gold mel, mel; predicted mel, bcc -> F1 mel 2/3, bcc 0 (predicted, no gold).
    clinical = dx["clinical"]["classification"]
    assert clinical["accuracy"] == pytest.approx(0.5)
    assert clinical["macro_f1"] == pytest.approx(1 / 3)
    assert clinical["balanced_accuracy"] == pytest.approx(0.5)
    assert dx["dermoscopic"]["classification"]["accuracy"] == 1.0
    assert "pathological" not in dx  # its only test pair has no diagnosis
    modality = scores[ev.MODALITY_TASK]
    assert modality["pathological"]["classification"]["accuracy"] == 0.0
    assert modality["clinical"]["classification"]["accuracy"] == 1.0
    assert modality["decoding"] == dx["decoding"] == scores["decoding"]
    rows = [
        json.loads(x) for x in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    ]
    matched = {
        r["reference"]: r["matched"] for r in rows if r["question_type"] == ev.DIAGNOSIS_TASK
    }
    assert matched == {
        "Melanoma": "melanoma",
        "melanoma ": "basal cell carcinoma",
        " basal cell\tcarcinoma ": "basal cell carcinoma",
    }
