"""`ml worker` end to end on CPU: a live platform, a release, queued TrainingRuns; the worker
pulls the release, runs SFT then evaluation on a tiny model and reports into the runs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ml.cli import main
from tests.ml.conftest import TINY_CONFIG

pytestmark = pytest.mark.django_db(transaction=True)


def _worker(live_server, token, model_dir, workdir, *extra):
    return [
        "worker", "--url", live_server.url, "--token", token, "--config", str(TINY_CONFIG),
        "--set", f"model.path={model_dir}", "--workdir", str(workdir), "--once",
        "--report-every", "0", *extra,
    ]  # fmt: skip


def test_worker_runs_queued_sft_then_eval_and_reports(
    live_server, platform_release, worker_token, api_client_for, tiny_model_dirs, tmp_path, capsys
):
    from curation.models import ReviewEvent, TrainingRun

    curator = api_client_for("curator")
    created = curator.post(
        "/api/training-runs/",
        {
            "release": platform_release.pk,
            "stage": "sft",
            "config": {"train": {"max_steps": 4, "lr": 1e-2, "log_every": 1}},
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    assert created.json()["status"] == "queued"

    workdir = tmp_path / "work"
    assert main(_worker(live_server, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == [
        {"id": run_id, "status": "done"}
    ]
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "done" and run.progress == 1.0, run.error
    assert run.metrics["stage"] == "sft" and run.metrics["steps"] == 4
    assert run.metrics["release"] == "skin@1.0.0"
    assert run.metrics["artefacts"]["files"] > 0
    out = Path(urlparse(run.artefacts_uri).path)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (
        "adapter/adapter_model.safetensors"
        in json.loads((out / "artefacts.json").read_text())["files"]
    )
    # Progress was streamed: one report per step before the final one (report-every 0).
    reports = ReviewEvent.objects.filter(action="training.reported").count()
    assert reports >= 1 + 4 + 1  # claim, steps, done

    # An eval run resumes from the SFT run's artefacts and reports its scores.
    ev = curator.post(
        "/api/training-runs/",
        {
            "release": platform_release.pk,
            "stage": "eval",
            "config": {
                "init_from_run": run_id,
                "eval": {"max_new_tokens": 3},
            },
        },
        format="json",
    ).json()
    assert main(_worker(live_server, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    ev_run = TrainingRun.objects.get(pk=ev["id"])
    assert ev_run.status == "done", ev_run.error
    scores = ev_run.metrics["eval"]
    assert "bleu1" in scores["vqa"]["all"] and scores["decoding"]["max_new_tokens"] == 3
    assert "accuracy" in scores["modality_classification"]["all"]["classification"]

    # Nothing queued: --once exits cleanly having done nothing.
    assert main(_worker(live_server, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == []


def test_worker_reports_a_failing_run(
    live_server, platform_release, worker_token, api_client_for, tiny_model_dirs, tmp_path
):
    from curation.models import TrainingRun

    curator = api_client_for("curator")
    run_id = curator.post(
        "/api/training-runs/",
        {"release": platform_release.pk, "stage": "dpo", "config": {"train": {"max_steps": 1}}},
        format="json",
    ).json()["id"]
    assert main(_worker(live_server, worker_token, tiny_model_dirs["llava"], tmp_path)) == 0
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "failed" and "init_from" in run.error
