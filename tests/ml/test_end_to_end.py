"""Issue #7 end to end, through the real entry points and nothing else.

The platform (a live test server) cuts a release with its own release builder from reviewed
rows; `python -m ml pull` fetches it with an ml_worker token and verifies every sha256; a
curator queues the chain align -> sft -> dpo -> eval over the API, each run resuming from the
previous one (`config.init_from_run`); one `python -m ml worker` takes the four runs in order.
Then every link is checked: the loss went down in each training stage, each stage started
from the previous stage's weights, DPO grew the chosen/rejected margin, eval wrote its metrics,
and the platform's TrainingRuns (API and database alike) show status, per-stage metrics and
where the artefacts are. Where it can, a check recomputes what a stage reported with
transformers and peft alone, so a stage that quietly ignored its input would not agree.

The align run trains LoRA as well as the projector (the issue's "and optionally LoRA"): in the
tiny random model the text loss sits at ln(vocab) and hardly depends on the image tokens, so a
projector-only align lowers it by ~0.05 nats on its first step and then not at all, which no
"loss went down" check can tell from batch noise. The projector-only hand-off to SFT is
tested in test_dpo_align.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import yaml

from ml.cli import main
from tests.ml.conftest import TINY_CONFIG

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

# Stage settings of the chain: a few steps each, learning rates high enough for a tiny model to
# learn visibly in that many steps.
ALIGN = {"lora": {"enabled": True, "train_projector": True}, "train": {"max_steps": 8, "lr": 1e-2}}
SFT = {"train": {"max_steps": 10, "lr": 1e-2}}
DPO = {
    "train": {"max_steps": 8, "lr": 5e-3, "batch_size": 2, "micro_batch_size": 2},
    "dpo": {"beta": 0.5},
}
EVAL = {"eval": {"max_new_tokens": 10}}


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(parsed.path)


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def _load(model_dir: Path, run_dir: Path | None, trainable: bool = False):
    """(model, processor): the base checkpoint with a run's saved adapter on top, loaded with
    transformers and peft directly, so that these checks do not share ml's loading code."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(run_dir / "processor" if run_dir else model_dir)
    if run_dir is not None:
        model = PeftModel.from_pretrained(model, run_dir / "adapter", is_trainable=trainable)
    return model.train(trainable), processor


def _adapter_fingerprint(model_dir: Path, run_dir: Path) -> str:
    """`trainable_sha256` of the weights a run saved."""
    from ml.stages.common import trainable_sha256

    return trainable_sha256(_load(model_dir, run_dir, trainable=True)[0])


def _preference_margin(model_dir: Path, release, run_dir: Path | None) -> float:
    """Mean log p(chosen) - log p(rejected) over the release's train preferences."""
    from ml.collator import ChatCollator
    from ml.config import DataConfig
    from ml.data import preference_examples
    from ml.stages.dpo import preference_margins

    model, processor = _load(model_dir, run_dir)
    data = DataConfig(max_length=yaml.safe_load(TINY_CONFIG.read_text())["data"]["max_length"])
    items = list(enumerate(preference_examples(release, "train", data)))
    chat = ChatCollator(processor, max_length=data.max_length)
    logps = preference_margins(model, items, chat, torch.device("cpu"), torch.float32)
    return _mean(c - r for c, r in logps.values())


def _answers(model_dir: Path, release, run_dir: Path | None, decoding: dict) -> list[str]:
    """Greedy answers to the eval items of the test split, as `ml eval` asks them."""
    from ml.config import config_from_dict
    from ml.evaluate import eval_items, generate

    model, processor = _load(model_dir, run_dir)
    cfg = config_from_dict({"model": {"path": str(model_dir), "dtype": "float32"}})
    cfg = config_from_dict({**cfg.to_dict(), "eval": decoding})
    return generate(model, processor, eval_items(release, "test"), cfg, torch.device("cpu"))


def test_release_to_trained_model_end_to_end(
    live_server,
    platform_release,
    worker_token,
    api_client_for,
    tiny_model_dirs,
    tmp_path,
    capsys,
):
    from curation.models import ReviewEvent, TrainingRun
    from curation.services import releases as release_service

    model_dir = tiny_model_dirs["llava"]

    # -- 1. `ml pull`: the release over HTTP with an ml_worker token, every sha256 verified ---
    platform_manifest = release_service.release_file(platform_release, "manifest.json")
    files = json.loads(platform_manifest.read_text("utf-8"))["files"]
    pulled = tmp_path / "pulled"
    argv = [
        "pull", "--url", live_server.url, "--token", worker_token,
        "--release", "skin@1.0.0", "--out", str(pulled),
    ]  # fmt: skip
    assert main(argv) == 0
    report = _last_json(capsys)
    assert report["release"] == "skin@1.0.0" and report["release_id"] == platform_release.pk
    assert report["files"] == len(files) and report["skipped"] == 0
    assert report["manifest_sha256"] == platform_release.manifest_sha256
    assert _sha256(pulled / "manifest.json") == platform_release.manifest_sha256
    for rel, meta in files.items():
        assert _sha256(pulled / rel) == meta["sha256"], rel
    from ml.release import Release

    release = Release(pulled)  # verifies again, as every stage does before training
    test_pairs = release.pairs("test")
    assert release.preferences("train") and test_pairs and release.vqa("test")
    # The diagnosis label set eval must use, worked out here from the raw pairs.jsonl.
    raw_pairs = [json.loads(x) for x in (pulled / "pairs.jsonl").read_text().splitlines()]
    expected_labels = sorted(
        {" ".join(p["diagnosis"].lower().split()) for p in raw_pairs
         if p["split"] == "test" and p.get("diagnosis")}
    )  # fmt: skip
    assert expected_labels

    # -- 2. A curator queues the whole chain over the API -------------------------------------
    curator = api_client_for("curator")

    def queue(stage: str, config: dict) -> int:
        resp = curator.post(
            "/api/training-runs/",
            {"release": platform_release.pk, "stage": stage, "config": config},
            format="json",
        )
        assert resp.status_code == 201, resp.content
        assert resp.json()["status"] == "queued"
        return resp.json()["id"]

    ids = {"align": queue("align", ALIGN)}
    ids["sft"] = queue("sft", {**SFT, "init_from_run": ids["align"]})
    ids["dpo"] = queue("dpo", {**DPO, "init_from_run": ids["sft"]})
    ids["eval"] = queue("eval", {**EVAL, "init_from_run": ids["dpo"]})

    # -- 3. One worker takes the four runs in order and reports into them ---------------------
    workdir = tmp_path / "work"
    argv = [
        "worker", "--url", live_server.url, "--token", worker_token,
        "--config", str(TINY_CONFIG), "--set", f"model.path={model_dir}",
        "--workdir", str(workdir), "--max-jobs", "4", "--poll", "0.1", "--report-every", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    handled = _last_json(capsys)["runs"]
    runs = {stage: TrainingRun.objects.get(pk=pk) for stage, pk in ids.items()}
    errors = {stage: run.error for stage, run in runs.items() if run.error}
    assert handled == [{"id": ids[s], "status": "done"} for s in ("align", "sft", "dpo", "eval")], (
        errors
    )

    # -- 4. The platform shows each run: API and database agree ------------------------------
    out: dict[str, Path] = {}
    for stage, run in runs.items():
        api = curator.get(f"/api/training-runs/{run.pk}/").json()
        assert api["status"] == run.status == "done" and api["progress"] == run.progress == 1.0
        assert api["metrics"] == run.metrics and api["artefacts_uri"] == run.artefacts_uri
        assert run.metrics["release"] == "skin@1.0.0" and run.error == ""
        folder = out[stage] = _folder(run.artefacts_uri)
        assert folder == (workdir / "runs" / f"run-{run.pk}").resolve()
        index = json.loads((folder / "artefacts.json").read_text())["files"]
        assert run.metrics["artefacts"]["files"] == len(index) > 0
        for rel, meta in index.items():  # the listed artefacts are there, byte for byte
            assert _sha256(folder / rel) == meta["sha256"], (stage, rel)
        # Claimed once, then progress streamed: a start report, one per step, the final one.
        events = ReviewEvent.objects.filter(target_type="trainingrun", target_id=run.pk)
        assert events.filter(action="training.claimed").count() == 1
        reports = events.filter(action="training.reported").count()
        assert reports >= 2 + run.metrics.get("steps", 0), (stage, reports)

    # -- 5. Training stages: the loss went down, each resumed from the previous stage ---------
    for stage, spec in (("align", ALIGN), ("sft", SFT), ("dpo", DPO)):
        metrics = runs[stage].metrics
        history = json.loads((out[stage] / "history.json").read_text())
        losses = [h["loss"] for h in history]
        assert metrics["stage"] == stage and metrics["steps"] == spec["train"]["max_steps"]
        assert len(losses) == spec["train"]["max_steps"]
        assert all(torch.isfinite(torch.tensor(losses))), (stage, losses)
        k = len(losses) // 4
        assert metrics["loss_start_mean"] == pytest.approx(_mean(losses[:k]))
        assert metrics["loss_end_mean"] == pytest.approx(_mean(losses[-k:]))
        # The loss went down: on the same fixed sample of the stage's training examples, before
        # and after its steps (single steps draw batches of very different difficulty).
        drop = metrics["probe_loss_before"] - metrics["probe_loss_after"]
        assert drop > 0.1, (stage, metrics["probe_loss_before"], metrics["probe_loss_after"])
    # Each stage started from exactly the weights the previous one saved: the fingerprint of
    # the saved adapter (read back here with peft alone) is the next stage's starting point.
    metrics = {stage: runs[stage].metrics for stage in ("align", "sft", "dpo")}
    assert metrics["align"]["init_from"] is None
    assert metrics["sft"]["init_from"] == str(out["align"])
    assert metrics["dpo"]["init_from"] == str(out["sft"])
    for prev, nxt in (("align", "sft"), ("sft", "dpo")):
        saved = _adapter_fingerprint(model_dir, out[prev])
        assert saved == metrics[prev]["trainable_sha256"], prev
        assert metrics[nxt]["init_trainable_sha256"] == saved, (prev, nxt)
    assert metrics["align"]["init_trainable_sha256"] != metrics["align"]["trainable_sha256"]

    # dpo started from the SFT model and kept it as the reference: its margin before training
    # is the SFT model's margin, computed here independently of the stages, and not the base
    # model's. Training then grew it.
    dpo = runs["dpo"].metrics
    margin_base = _preference_margin(model_dir, release, None)
    margin_sft = _preference_margin(model_dir, release, out["sft"])
    margin_dpo = _preference_margin(model_dir, release, out["dpo"])
    assert abs(margin_sft - margin_base) > 0.5, (margin_base, margin_sft)
    assert dpo["margin_before"] == pytest.approx(margin_sft, abs=1e-3)
    assert dpo["margin_after"] == pytest.approx(margin_dpo, abs=1e-3)
    assert dpo["margin_after"] > dpo["margin_before"] + 0.5, dpo
    dpo_history = json.loads((out["dpo"] / "history.json").read_text())
    assert _mean(h["reward_margin"] for h in dpo_history[-2:]) > _mean(
        h["reward_margin"] for h in dpo_history[:2]
    )
    assert dpo_history[-1]["reward_margin"] > 0

    # -- 6. eval: metrics written next to the model it evaluated, and reported ----------------
    scores = json.loads((out["eval"] / "eval.json").read_text())
    assert scores["trained"] == str(out["dpo"]) and scores["release"] == "skin@1.0.0"
    assert scores["split"] == "test" and scores["decoding"]["max_new_tokens"] == 10
    reported = runs["eval"].metrics["eval"]
    for key in ("vqa", "modality_classification", "diagnosis_classification", "decoding"):
        assert reported[key] == scores[key], key
    modalities = {p.modality for p in test_pairs}
    vqa = scores["vqa"]
    assert vqa["all"]["n"] == len(release.vqa("test"))
    assert {"bleu1", "bleu4", "rouge_l", "token_recall"} <= set(vqa["all"])
    assert modalities <= set(vqa)
    for task in ("modality_classification", "diagnosis_classification"):
        block = scores[task]
        assert block["decoding"] == scores["decoding"] and block["prompt"]
        assert modalities <= set(block), (task, set(block))
        for group in ["all", *modalities]:
            cls = block[group]["classification"]
            assert {"accuracy", "macro_f1", "balanced_accuracy", "n"} <= set(cls), (task, group)
            assert 0.0 <= cls["accuracy"] <= 1.0
    assert scores["diagnosis_classification"]["labels"] == expected_labels
    dx_n = sum(1 for p in test_pairs if p.diagnosis)
    assert scores["diagnosis_classification"]["all"]["classification"]["n"] == dx_n
    rows = (out["eval"] / "predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(x) for x in rows]
    assert len(predictions) == vqa["all"]["n"] + len(test_pairs) + dx_n
    # The answers scored are the DPO model's (regenerated here), not the base model's.
    dpo_answers = _answers(model_dir, release, out["dpo"], scores["decoding"])
    assert [p["prediction"] for p in predictions] == dpo_answers
    assert _answers(model_dir, release, None, scores["decoding"]) != dpo_answers
