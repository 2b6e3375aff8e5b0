"""`ml eval` writes per-modality metrics with decoding parameters; CLI errors are clear."""

import json

from ml.cli import main
from tests.ml.conftest import TINY_CONFIG


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
