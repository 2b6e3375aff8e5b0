"""`ml eval` writes per-modality metrics with decoding parameters; CLI errors are clear."""

import json

from ml.cli import main
from tests.ml.conftest import TINY_CONFIG, write_release


def test_eval_writes_metrics_per_modality(tmp_path, sft_run, tiny_model_dirs, release_dir, family):
    out = tmp_path / "eval"
    rc = main(
        [
            "eval",
            "--config",
            str(TINY_CONFIG),
            "--set",
            f"model.path={tiny_model_dirs[family]}",
            "--set",
            f"data.release={release_dir}",
            "--set",
            f"train.init_from={sft_run}",
            "--set",
            f"train.output_dir={out}",
            "--set",
            "eval.max_new_tokens=4",
        ]
    )
    assert rc == 0
    scores = json.loads((out / "eval.json").read_text())
    assert scores["decoding"]["max_new_tokens"] == 4 and scores["decoding"]["do_sample"] is False
    vqa = scores["vqa"]
    assert {"bleu1", "bleu4", "rouge_l", "token_recall"} <= set(vqa["all"])
    assert "yes_no_accuracy" in vqa["all"]
    assert {"clinical", "dermoscopic", "pathological"} <= set(vqa)
    cls = scores["modality_classification"]["all"]["classification"]
    assert {"accuracy", "macro_f1", "balanced_accuracy"} <= set(cls)
    dx = scores["diagnosis_classification"]
    assert {"accuracy", "macro_f1", "balanced_accuracy"} <= set(dx["all"]["classification"])
    assert dx["labels"] == ["nevus"]  # every test pair of the fixture release is a nevus
    assert dx["decoding"]["max_new_tokens"] == 4
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == vqa["all"]["n"] + sum(
        scores[task]["all"]["n"] for task in ("modality_classification", "diagnosis_classification")
    )


def test_pull_without_url_fails_clearly(capsys, monkeypatch):
    monkeypatch.delenv("MMSKIN_URL", raising=False)
    assert main(["pull", "--release", "fixture@1", "--out", "x"]) == 1
    assert "--url" in capsys.readouterr().err


_PERFECT_MODALITY_ANSWER = {
    "clinical": "A clinical photograph.",
    "dermoscopic": "A dermoscopic image.",
    "pathological": "A histopathology image.",
    "other": "Other: a drawing, not a photograph.",
}


def test_modality_other_is_scored_as_a_whole_word(tmp_path, monkeypatch):
    """`other` is a fourth answer of the modality question: perfect answers score 1.0 on
    every pair, `other` included; "another" or "others" in an answer is not `other`."""
    import ml.evaluate as ev
    from ml.config import config_from_dict

    root = write_release(tmp_path / "rel", n_pairs=16)
    rows = [json.loads(line) for line in (root / "pairs.jsonl").read_text().splitlines()]
    for row in rows:  # the test split is p3, p7, p11, p15: make two of them `other`
        if row["id"] in ("p7", "p15"):
            row["modality"] = "other"
        if row["id"] == "p11":
            row["modality"] = "drawing"  # no answer of the question: excluded, and named
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def perfect(model, processor, items, cfg, device):
        return [
            _PERFECT_MODALITY_ANSWER.get(it["reference"], "Another kind, among others.")
            if it["question_type"] == ev.MODALITY_TASK
            else it["reference"]
            for it in items
        ]

    monkeypatch.setattr(ev, "load_for_eval", lambda cfg, device: (None, None))
    monkeypatch.setattr(ev, "generate", perfect)
    cfg = config_from_dict(
        {
            "model": {"dtype": "float32"},
            "data": {"release": str(root), "verify": False},
            "train": {"output_dir": str(tmp_path / "out")},
        }
    )
    scores = ev.run_eval(cfg)["modality_classification"]
    overall = scores["all"]["classification"]
    assert overall["n"] == 3 and overall["excluded"] == 1
    assert overall["accuracy"] == overall["macro_f1"] == overall["balanced_accuracy"] == 1.0
    assert scores["excluded_labels"] == ["drawing"]
    assert scores["other"]["classification"]["accuracy"] == 1.0
    assert scores["other"]["classification"]["n"] == 2
    assert "other" in scores["labels"] and "or other?" in scores["prompt"]


def test_match_modality_reads_other_only_as_a_word():
    import ml.evaluate as ev

    labels = list(ev.MODALITY_LABELS.values())
    assert ev.match_modality("Another dermoscopic view", labels) == "dermoscop"
    assert ev.match_modality("others", labels) is None
    assert ev.match_modality("Other, not clinical", labels) == "other"
    assert ev.match_modality("Clinical, not other", labels) == "clinical"
