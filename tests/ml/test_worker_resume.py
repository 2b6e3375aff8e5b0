"""A worker killed mid-run (SIGKILL): the next worker on the workdir resumes the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml.cli import main
from tests.ml.conftest import TINY_CONFIG

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _worker_args(url, token, model_dir, workdir):
    return [
        "worker", "--url", url, "--token", token, "--config", str(TINY_CONFIG),
        "--set", f"model.path={model_dir}", "--workdir", str(workdir), "--once",
        "--report-every", "0", "--poll", "0.2",
    ]  # fmt: skip


def test_worker_resumes_a_run_whose_worker_was_killed(
    live_server, platform_release, worker_token, api_client_for, tiny_model_dirs, tmp_path, capsys
):
    from curation.models import TrainingRun

    curator = api_client_for("curator")
    train = {"max_steps": 8, "save_every": 2, "lr": 1e-2, "log_every": 1}
    run_id = curator.post(
        "/api/training-runs/",
        {"release": platform_release.pk, "stage": "sft", "config": {"train": train}},
        format="json",
    ).json()["id"]
    workdir = tmp_path / "work"
    args = _worker_args(live_server.url, worker_token, tiny_model_dirs["llava"], workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ml", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ckpt = workdir / "runs" / f"run-{run_id}" / "checkpoints" / "step-00000004" / "state.json"
    deadline = time.monotonic() + 600
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and ckpt.is_file()
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "running"  # nobody reported it: the worker just vanished

    assert main(_worker_args(live_server.url, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    handled = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]
    assert handled == [{"id": run_id, "status": "done", "resumed": True}]
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.metrics["steps"] == 8 and run.metrics["resumed_from_step"] >= 4
    assert not (workdir / "claims" / f"run-{run_id}.json").exists()
    # A second start finds nothing to resume and no queued run.
    assert main(_worker_args(live_server.url, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == []
