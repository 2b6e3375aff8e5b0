"""The training command runs data-parallel under torchrun: 2 CPU processes, gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml.conftest import TINY_CONFIG

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_gloo_ranks_train_and_agree_on_weights(tmp_path, tiny_model_dirs, release_dir):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "ml", "train", "--stage", "sft", "--config", str(TINY_CONFIG),
        "--set", f"model.path={tiny_model_dirs['llava']}", "--set", f"data.release={release_dir}",
        "--set", f"train.output_dir={out}", "--set", "train.max_steps=2",
        "--set", "train.batch_size=4", "--set", "train.micro_batch_size=2",
        "--set", "train.lr=1e-2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summaries = [
        json.loads(line)["summary"]
        for line in proc.stdout.splitlines()
        if line.startswith('{"summary"')
    ]
    assert len(summaries) == 2  # one per rank
    for summary in summaries:
        assert summary["world_size"] == 2 and summary["steps"] == 2
        # sha256 of every trainable tensor on rank 0 and on rank 1: identical bytes.
        hashes = summary["replica_sha256"]
        assert len(hashes) == 2 and hashes[0] == hashes[1]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["replica_sha256"] == summaries[0]["replica_sha256"]
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and all(h["loss"] == h["loss"] for h in history)  # no NaN
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
