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


# -- cancelling a run, heartbeats, config errors the platform cannot see -----------------------
class _FakeClient:
    """Answers a run's PATCHes: 409 `cancelled` once `cancelled` is set, else echoes."""

    def __init__(self) -> None:
        self.cancelled = False
        self.patches: list[dict] = []

    def json(self, path, method="GET", body=None, **kw):
        from ml.client import ApiError

        if method == "PATCH":
            if self.cancelled:
                raise ApiError(
                    f"{method} {path} -> HTTP 409", status=409,
                    body=json.dumps({"code": "cancelled", "detail": "stop", "status": "cancelled"}),
                )  # fmt: skip
            self.patches.append(body)
            return body
        raise AssertionError(f"unexpected {method} {path}")


def test_a_lost_report_is_tolerated_but_a_cancelled_run_stops_the_stage():
    from ml.client import ApiError
    from ml.worker import RunCancelled, RunReporter

    client = _FakeClient()
    reporter = RunReporter(client, 7, every_s=0)
    reporter.on_log({"step": 1, "total_steps": 4, "loss": 1.0})
    assert client.patches[-1]["progress"] == pytest.approx(0.2475)

    def unavailable(*a, **kw):
        raise ApiError("HTTP 503", status=503, body="busy")

    client.json = unavailable  # a transient failure: training goes on
    reporter.on_log({"step": 2, "total_steps": 4, "loss": 0.9})
    del client.json
    client.cancelled = True
    with pytest.raises(RunCancelled):
        reporter.on_log({"step": 3, "total_steps": 4, "loss": 0.8})


@pytest.fixture
def fake_stage(monkeypatch):
    """A stage that reports ten steps; `on_step(n)` runs before step n is reported."""
    import ml.stages

    state = {"reached": 0, "on_step": lambda n: None}

    def stage(cfg, on_log=None):
        for step in range(1, 11):
            state["on_step"](step)
            state["reached"] = step
            on_log({"step": step, "total_steps": 10, "loss": 1.0 / step})
        return {"stage": "sft", "steps": 10}

    monkeypatch.setattr(ml.stages, "get_stage", lambda name: stage)
    return state


def test_a_run_cancelled_while_running_stops_at_its_next_report(
    live_server, platform_release, worker_token, api_client_for, tmp_path, fake_stage, capsys
):
    from curation.models import ReviewEvent, TrainingRun
    from curation.services import training as training_service

    curator = api_client_for("curator")
    run_id = curator.post(
        "/api/training-runs/",
        {"release": platform_release.pk, "stage": "sft", "config": {"train": {"max_steps": 10}}},
        format="json",
    ).json()["id"]

    def cancel_at_step_3(step):
        if step == 3:  # the curator presses Cancel while step 3 trains
            training_service.cancel_training_run(run_id, curator.user)

    fake_stage["on_step"] = cancel_at_step_3
    assert main(_worker(live_server, worker_token, tmp_path / "m", tmp_path / "w")) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == [
        {"id": run_id, "status": "cancelled"}
    ]
    assert fake_stage["reached"] == 3  # stopped at the first report after the cancel
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == "cancelled" and run.progress < 0.3
    assert "Cancelled by" in run.error  # the worker did not overwrite it with a failure
    after_cancel = ReviewEvent.objects.filter(
        target_id=run_id, pk__gt=ReviewEvent.objects.get(action="training.cancelled").pk
    )
    assert not after_cancel.exists()


def test_an_idle_worker_polls_with_a_heartbeat(
    live_server, worker_token, tmp_path, make_user, client, db
):
    import socket

    from curation.models import Release, WorkerHeartbeat

    assert (
        main(_worker(live_server, worker_token, tmp_path / "m", tmp_path, "--stages", "sft")) == 0
    )
    beat = WorkerHeartbeat.objects.get()
    assert beat.user.username == "gpu1" and beat.hostname == socket.gethostname()
    assert beat.stages == ["sft"] and beat.worker.startswith(socket.gethostname())
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    client.force_login(make_user("cur", "curator"))
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert beat.worker in page and "No GPU worker connected" not in page


def test_a_setting_the_platform_cannot_check_fails_the_run_with_its_name(
    live_server, platform_release, worker_token, api_client_for, tmp_path
):
    from curation.models import TrainingRun

    queued = api_client_for("curator").post(
        "/api/training-runs/",
        {"release": platform_release.pk, "stage": "sft", "config": {"train": {"max_stepz": 5}}},
        format="json",
    )
    assert queued.status_code == 201  # the syntax is fine; ml's schema is the worker's
    assert main(_worker(live_server, worker_token, tmp_path / "m", tmp_path)) == 0
    run = TrainingRun.objects.get(pk=queued.json()["id"])
    assert run.status == "failed"
    assert "ConfigError" in run.error and "max_stepz" in run.error
