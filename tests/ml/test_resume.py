"""Runs that survive: a tiny run killed with SIGKILL mid-way resumes onto the unbroken curve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml.conftest import TINY_CONFIG, run_stage

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["train.max_steps=8", "train.save_every=2", "train.lr=1e-2", "train.log_every=1"]


def _train_argv(stage, model_dir, release, out, *extra):
    argv = [sys.executable, "-m", "ml", "train", "--stage", stage, "--config", str(TINY_CONFIG)]
    for item in (f"model.path={model_dir}", f"data.release={release}",
                 f"train.output_dir={out}", *extra):  # fmt: skip
        argv += ["--set", item]
    return argv


def kill_after_step(argv: list[str], step: int) -> int:
    """Start a training process and SIGKILL it once it has logged `step`; return the step."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            text=True, cwd=ROOT)  # fmt: skip
    seen = 0
    try:
        for line in proc.stdout:
            if line.startswith("{") and '"step"' in line:
                seen = json.loads(line)["step"]
                if seen >= step:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_killed_run_resumes_on_the_unbroken_loss_curve(
    stage, tmp_path, tiny_model_dirs, release_dir
):
    model_dir = tiny_model_dirs["llava"]  # one family: the mechanics are the loop's
    extra = [*STEPS]
    if stage == "dpo":
        init = tmp_path / "sft"
        assert run_stage("sft", model_dir, release_dir, init, "train.max_steps=2") == 0
        extra += [f"train.init_from={init}", "train.lr=5e-3"]
    whole = tmp_path / "whole"
    assert run_stage(stage, model_dir, release_dir, whole, *extra) == 0
    unbroken = json.loads((whole / "history.json").read_text())

    broken = tmp_path / "broken"
    killed_at = kill_after_step(_train_argv(stage, model_dir, release_dir, broken, *extra), 5)
    assert killed_at >= 5 and not (broken / "summary.json").exists()
    saved = sorted(p.name for p in (broken / "checkpoints").iterdir())
    assert "step-00000004" in saved, saved
    ckpt = broken / "checkpoints" / "step-00000004"
    for name in ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "scaler.pt",
                 "rng-0.pt", "state.json"):  # fmt: skip
        assert (ckpt / name).is_file(), name

    # Without --resume the checkpoints are not silently overwritten.
    assert run_stage(stage, model_dir, release_dir, broken, *extra) == 1

    assert run_stage(stage, model_dir, release_dir, broken, *extra, "train.resume=true") == 0
    resumed = json.loads((broken / "history.json").read_text())
    summary = json.loads((broken / "summary.json").read_text())
    assert summary["resumed_from_step"] >= 4 and summary["steps"] == 8
    assert [h["step"] for h in resumed] == list(range(1, 9))
    for a, b in zip(unbroken, resumed, strict=True):
        assert abs(a["loss"] - b["loss"]) <= 1e-5, (a, b)
        assert abs(a["lr"] - b["lr"]) <= 1e-12 and a["tokens"] == b["tokens"]
    whole_summary = json.loads((whole / "summary.json").read_text())
    assert summary["trainable_sha256"] == whole_summary["trainable_sha256"]
    assert summary["probe_loss_before"] == whole_summary["probe_loss_before"]
