"""The loss curve a worker reports, and the run page and run comparison drawn from it."""

from __future__ import annotations

import re

import pytest

from curation.models import Release, ReviewEvent, TrainingRun
from curation.selectors import run_metrics
from curation.services import training as training_service
from curation.services.errors import ServiceError


@pytest.fixture
def claimed(db, make_user):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    run = TrainingRun.objects.create(release=release, stage="sft")
    gpu = make_user("gpu1", "ml_worker")
    training_service.claim_training_run(run.pk, gpu, "box-1")
    return run, gpu


def _report(run, gpu, **metrics):
    return training_service.report_training_run(run.pk, gpu, {"metrics": metrics})


# -- the service: the curve appends ------------------------------------------------------------
def test_reports_append_to_the_curve_and_other_metrics_replace(claimed):
    run, gpu = claimed
    _report(run, gpu, loss=2.0, curve=[[1, 2.5], [2, 2.0]])
    done = _report(run, gpu, loss=1.5, curve=[[3, 1.7], [4, 1.5]])
    assert done.metrics["curve"] == [[1, 2.5], [2, 2.0], [3, 1.7], [4, 1.5]]
    assert done.metrics["loss"] == 1.5 and done.metrics["worker"] == "box-1"
    # The audit event holds what the report added, not the whole curve again.
    last = ReviewEvent.objects.filter(action="training.reported").order_by("-pk").first()
    assert last.after["metrics"]["curve"] == [[3, 1.7], [4, 1.5]]


def test_a_resumed_run_replaces_the_steps_it_logs_again(claimed):
    run, gpu = claimed
    _report(run, gpu, curve=[[1, 3.0], [2, 2.0], [3, 1.0], [4, 0.5]])
    done = _report(run, gpu, curve=[[3, 1.1], [4, 0.6], [5, 0.4]])
    assert done.metrics["curve"] == [[1, 3.0], [2, 2.0], [3, 1.1], [4, 0.6], [5, 0.4]]


def test_a_long_curve_is_thinned_in_its_older_half():
    old = [[i, 1.0] for i in range(1, training_service.CURVE_POINTS + 1)]
    curve = training_service.merge_curve(old, [[training_service.CURVE_POINTS + 1, 0.5]])
    assert len(curve) <= training_service.CURVE_POINTS
    assert curve[0] == [1, 1.0] and curve[-1] == [training_service.CURVE_POINTS + 1, 0.5]
    steps = [p[0] for p in curve]
    assert steps == sorted(steps) and steps[-50:] == list(range(steps[-50], steps[-1] + 1))


@pytest.mark.parametrize(
    "curve",
    [[[1, "x"]], [[1, 2, 3]], "1,2", [[2, 1.0], [1, 0.5]], [[1, True]], [[1, 1.0], [1, 0.9]]],
)
def test_a_bad_curve_is_refused_and_nothing_changes(claimed, curve):
    run, gpu = claimed
    _report(run, gpu, curve=[[1, 2.0]])
    with pytest.raises(ServiceError, match=r"metrics\.curve"):
        _report(run, gpu, loss=9.9, curve=curve)
    run.refresh_from_db()
    assert run.metrics["curve"] == [[1, 2.0]] and "loss" not in run.metrics


def test_the_api_answers_a_bad_curve_with_400(claimed, api_client_for):
    run, _ = claimed
    client = api_client_for("curator")
    response = client.patch(
        f"/api/training-runs/{run.pk}/", {"metrics": {"curve": [[2, 1], [1, 1]]}}, format="json"
    )
    assert response.status_code == 400 and b"steps must increase" in response.content


# -- the selectors ------------------------------------------------------------------------------
def test_loss_chart_maps_steps_and_losses_into_the_plot():
    chart = run_metrics.loss_chart([(1, "a", {"curve": [[0, 4.0], [10, 2.0], [20, 0.0]]})])
    (series,) = chart.series
    points = [tuple(map(float, p.split(","))) for p in series.points.split()]
    p = chart.plot
    assert points[0] == (p["x0"], p["y0"])  # first step, highest loss: top left
    assert points[-1] == (p["x1"], p["y1"])  # last step, lowest loss: bottom right
    assert points[1] == ((p["x0"] + p["x1"]) / 2, (p["y0"] + p["y1"]) / 2)
    assert [t["label"] for t in chart.y_ticks] == ["0", "1", "2", "3", "4"]
    assert run_metrics.loss_chart([(1, "a", {"loss": 1.0})]).empty


def test_benchmark_rows_read_suite_release_eval_and_sft_cls():
    metrics = {
        "benchmarks": {
            "HAM10000": {"kind": "classification", "accuracy": 0.5, "macro_f1": 0.4, "n": 10},
            "MM-Skin VQA": {"kind": "vqa", "bleu4": 0.1, "rouge_l": 0.3, "n": 5},
        },
        "eval": {
            "vqa": {"all": {"bleu1": 0.2, "token_recall": 0.6, "yes_no_accuracy": 0.7, "n": 4}},
            "modality_classification": {"all": {"classification": {"accuracy": 0.9, "n": 3}}},
        },
    }
    rows = {r.name: r for r in run_metrics.benchmark_rows(metrics)}
    assert rows["HAM10000"].headline == 0.5 and rows["MM-Skin VQA"].headline == 0.3
    assert rows["release test: VQA"].values["recall"] == 0.6
    assert rows["release test: VQA"].values["closed_accuracy"] == 0.7
    assert rows["release test: modality"].values["accuracy"] == 0.9
    sft = run_metrics.benchmark_rows(
        {"stage": "sft_cls", "benchmark": "DDI", "accuracy": 0.8, "auc": 0.9, "test_rows": 7}
    )
    assert sft[0].name == "DDI (sft_cls)" and sft[0].values["auc"] == 0.9 and sft[0].n == 7


def test_compare_marks_the_best_of_each_figure():
    a = {"benchmarks": {"H": {"kind": "classification", "accuracy": 0.5}}}
    b = {"benchmarks": {"H": {"kind": "classification", "accuracy": 0.7}, "D": {"accuracy": 0.1}}}
    rows = run_metrics.compare([(1, "a", a), (2, "b", b)])
    h = next(r for r in rows if r.name == "H" and r.metric == "accuracy")
    assert [c["best"] for c in h.cells] == [False, True]
    d = next(r for r in rows if r.name == "D")
    assert d.cells[0]["value"] is None and d.cells[1]["best"] is False  # alone: no "best"


# -- the pages ---------------------------------------------------------------------------------
@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user("cat", "curator"))
    return client


def _run(release, **metrics):
    return TrainingRun.objects.create(release=release, stage="eval", status="done", metrics=metrics)


def test_run_page_draws_the_curve_and_the_benchmark_table(staff_client, db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    run = _run(
        release,
        curve=[[1, 2.0], [2, 1.5], [3, 1.2]],
        benchmarks={"HAM10000": {"kind": "classification", "accuracy": 0.625, "n": 8}},
    )
    html = staff_client.get(f"/releases/{release.pk}/runs/{run.pk}/").content.decode()
    polyline = re.search(r'<polyline class="curve series-0"[^>]*points="([^"]+)"', html)
    assert polyline and len(polyline.group(1).split()) == 3
    assert 'data-name="HAM10000"' in html and "0.625" in html
    assert "<script" not in html.split("</head>")[1]  # the chart is markup, no script
    page = staff_client.get(f"/releases/{release.pk}/").content.decode()
    assert f'href="/releases/{release.pk}/runs/{run.pk}/"' in page


def test_run_page_of_another_release_is_404(staff_client, db):
    a = Release.objects.create(name="derm", version="1.0.0", status="ready")
    b = Release.objects.create(name="derm", version="2.0.0", status="ready")
    run = _run(a)
    assert staff_client.get(f"/releases/{b.pk}/runs/{run.pk}/").status_code == 404


def test_compare_page_and_its_refusals(staff_client, db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    a = _run(release, curve=[[1, 2.0], [2, 1.0]], benchmarks={"H": {"accuracy": 0.5}})
    b = _run(release, curve=[[1, 2.2], [2, 0.9]], benchmarks={"H": {"accuracy": 0.75}})
    html = staff_client.get(f"/runs/compare/?run={a.pk}&run={b.pk}").content.decode()
    assert f'id="curve-{a.pk}"' in html and f'id="curve-{b.pk}"' in html
    assert re.search(r'<td class="num best">0\.750</td>', html)
    for query, status, message in (
        (f"run={a.pk}", 400, "at least two"),
        ("run=x&run=1", 400, "run numbers"),
        (f"run={a.pk}&run=999999", 404, "No training run #999999"),
        ("&".join(f"run={i}" for i in range(1, 9)), 400, "At most 6"),
    ):
        response = staff_client.get(f"/runs/compare/?{query}")
        assert response.status_code == status and message in response.content.decode()
