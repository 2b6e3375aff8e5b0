"""The worker reports every logged step's loss (the run page's curve) and an eval run's
benchmark suite scores, into a live platform."""

from __future__ import annotations

import pytest

from ml.cli import main
from ml.client import ApiError
from ml.worker import RunReporter
from tests.ml.bench_fixtures import write_classification, write_vqa
from tests.ml.test_worker import _worker


class _Flaky:
    """A client whose first PATCH fails."""

    def __init__(self):
        self.sent, self.calls = [], 0

    def json(self, path, method="GET", body=None):
        self.calls += 1
        if self.calls == 1:
            raise ApiError("down", status=503)
        self.sent.append(body)
        return {}


def test_reporter_keeps_curve_points_until_a_report_gets_through():
    client = _Flaky()
    rep = RunReporter(client, 7, every_s=0)
    rep.on_log({"step": 1, "total_steps": 3, "loss": 2.0})  # lost
    rep.on_log({"step": 2, "total_steps": 3, "loss": 1.5})
    rep.on_log({"step": 3, "total_steps": 3, "loss": 1.0})
    assert client.sent[0]["metrics"]["curve"] == [[1, 2.0], [2, 1.5]]
    assert client.sent[1]["metrics"]["curve"] == [[3, 1.0]]
    assert rep.curve_pending == []


@pytest.mark.django_db(transaction=True)
def test_worker_reports_curve_and_suite_scores(
    live_server, platform_release, worker_token, api_client_for, tiny_model_dirs, tmp_path
):
    from curation.models import TrainingRun

    curator = api_client_for("curator")
    sft = curator.post(
        "/api/training-runs/",
        {
            "release": platform_release.pk,
            "stage": "sft",
            "config": {"train": {"max_steps": 4, "lr": 1e-2, "log_every": 1}},
        },
        format="json",
    ).json()
    workdir = tmp_path / "work"
    model = tiny_model_dirs["llava"]
    # Reports throttled to one an hour: only the first and the last get through, yet the
    # curve has every step.
    args = _worker(live_server, worker_token, model, workdir)
    args[args.index("--report-every") + 1] = "3600"
    assert main(args) == 0
    run = TrainingRun.objects.get(pk=sft["id"])
    assert run.status == "done", run.error
    assert [p[0] for p in run.metrics["curve"]] == [1, 2, 3, 4]

    write_classification(tmp_path / "bench", "HAM10000_test")
    write_vqa(tmp_path / "bench")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "images: bench/images\nbenchmarks:\n"
        "  - csv: bench/HAM10000_test.csv\n  - csv: bench/VQA_test.csv\n"
    )
    ev = curator.post(
        "/api/training-runs/",
        {
            "release": platform_release.pk,
            "stage": "eval",
            "config": {
                "init_from_run": sft["id"],
                "eval": {"max_new_tokens": 3, "suite": str(suite)},
            },
        },
        format="json",
    ).json()
    assert main(_worker(live_server, worker_token, model, workdir)) == 0
    ev_run = TrainingRun.objects.get(pk=ev["id"])
    assert ev_run.status == "done", ev_run.error
    bench = ev_run.metrics["benchmarks"]
    assert bench["HAM10000_test"]["kind"] == "classification"
    assert bench["HAM10000_test"]["n"] == 9 and bench["VQA_test"]["n"] == 4
    assert "rouge_l" in bench["VQA_test"] and "vqa" in ev_run.metrics["eval"]


@pytest.mark.django_db(transaction=True)
def test_worker_runs_sft_cls_and_the_run_page_shows_its_scores(
    live_server, platform_release, worker_token, api_client_for, tiny_model_dirs, tmp_path, client
):
    from curation.models import TrainingRun

    root = tmp_path / "bench"
    write_classification(root, "DDI_train", n_per_class=6, seed=2)
    write_classification(root, "DDI_test", n_per_class=3, seed=3)
    curator = api_client_for("curator")
    created = curator.post(
        "/api/training-runs/",
        {
            "release": platform_release.pk,
            "stage": "sft_cls",
            "config": {
                "sft_cls": {
                    "train_csv": str(root / "DDI_train.csv"),
                    "test_csv": str(root / "DDI_test.csv"),
                    "images": str(root / "images"),
                }
            },
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    workdir = tmp_path / "work"
    assert main(_worker(live_server, worker_token, tiny_model_dirs["llava"], workdir)) == 0
    run = TrainingRun.objects.get(pk=created.json()["id"])
    assert run.status == "done", run.error
    assert run.metrics["benchmark"] == "DDI_test" and run.metrics["accuracy"] == 1.0
    client.force_login(curator.user)
    page = client.get(f"/releases/{platform_release.pk}/runs/{run.pk}/").content.decode()
    assert 'data-name="DDI_test (sft_cls)"' in page
