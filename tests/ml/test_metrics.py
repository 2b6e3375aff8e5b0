"""Metrics against hand-computed values."""

import math

import pytest

from ml.metrics import (
    Prediction,
    classification_scores,
    evaluate,
    match_label,
    rouge_l,
    sentence_bleu,
    token_recall,
    tokenize,
)


def test_tokenize_splits_punctuation():
    assert tokenize("Melanoma, in situ.") == ["melanoma", ",", "in", "situ", "."]


def test_bleu_perfect_and_hand_computed():
    assert sentence_bleu("a red scaly plaque", "a red scaly plaque", 4) == pytest.approx(1.0)
    # hyp "a red plaque" vs ref "a red scaly plaque": p1 = 3/3, p2 = 1/2 (only "a red"),
    # brevity penalty exp(1 - 4/3).
    bp = math.exp(1 - 4 / 3)
    assert sentence_bleu("a red scaly plaque", "a red plaque", 1) == pytest.approx(bp)
    assert sentence_bleu("a red scaly plaque", "a red plaque", 2) == pytest.approx(
        bp * math.sqrt(1.0 * 0.5)
    )
    # No bigram matches: smoothed with eps=0.1 instead of collapsing to zero.
    assert sentence_bleu("yes", "yes", 2) == pytest.approx(math.sqrt(1.0 * 0.1 / 1))
    assert sentence_bleu("x", "", 4) == 0.0


def test_rouge_l_and_recall():
    # LCS("a b c d", "a c d e") = 3 -> p = r = 3/4.
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert token_recall("red scaly plaque", "a scaly red patch") == pytest.approx(2 / 3)


def test_label_matching_prefers_earliest_then_longest():
    labels = ["nevus", "melanoma", "basal cell carcinoma", "carcinoma"]
    assert match_label("Likely basal cell carcinoma, not a nevus", labels) == (
        "basal cell carcinoma"
    )
    assert match_label("no idea", labels) is None


def test_classification_scores():
    gold = ["a", "a", "a", "b"]
    pred = ["a", "a", "b", None]
    s = classification_scores(gold, pred)
    assert s["accuracy"] == pytest.approx(0.5)
    # recall a = 2/3, recall b = 0 -> balanced 1/3; F1 a = 0.8, F1 b = 0 -> macro 0.4.
    assert s["balanced_accuracy"] == pytest.approx(1 / 3)
    assert s["macro_f1"] == pytest.approx(0.4)


def test_evaluate_groups_by_modality_and_scores_closed_questions():
    preds = [
        Prediction("yes", "Yes, it is.", "clinical"),
        Prediction("no", "yes", "dermoscopic"),
        Prediction("melanoma", "This is melanoma.", "clinical", label="melanoma"),
    ]
    out = evaluate(preds, labels=["melanoma", "nevus"])
    assert out["all"]["yes_no_accuracy"] == pytest.approx(0.5)
    assert out["clinical"]["yes_no_accuracy"] == 1.0
    assert out["clinical"]["classification"]["accuracy"] == 1.0
    assert "sentence-BLEU" in out["bleu_implementation"]
    assert out["dermoscopic"]["n"] == 1
