"""A curator opens a run's page from the release page and sees its loss curve and benchmark
table, then ticks two runs and compares them side by side, all under the real CSP."""

import pytest

from curation.models import Release, TrainingRun
from tests.e2e.csp import watch_refusals

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NONE = "\u2013"  # the dash of a figure a run did not report


@pytest.fixture
def runs(transactional_db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    sft = TrainingRun.objects.create(
        release=release,
        stage="sft",
        status="done",
        progress=1.0,
        metrics={"loss": 0.8, "steps": 5, "curve": [[i, 3.0 / i] for i in range(1, 6)]},
    )
    mm = TrainingRun.objects.create(
        release=release,
        stage="eval",
        status="done",
        progress=1.0,
        metrics={
            "curve": [[i, 2.0 / i] for i in range(1, 6)],
            "benchmarks": {
                "HAM10000": {"kind": "classification", "accuracy": 0.42, "macro_f1": 0.3, "n": 50},
                "MM-Skin VQA": {"kind": "vqa", "bleu4": 0.12, "rouge_l": 0.35, "n": 20},
            },
        },
    )
    pubmm = TrainingRun.objects.create(
        release=release,
        stage="eval",
        status="done",
        progress=1.0,
        metrics={
            "benchmarks": {
                "HAM10000": {"kind": "classification", "accuracy": 0.61, "macro_f1": 0.5, "n": 50}
            }
        },
    )
    return release, sft, mm, pubmm


def test_run_page_curve_table_and_comparison(login, page, live_server, runs):
    release, sft, mm, pubmm = runs
    refused = watch_refusals(page)
    login("cat", "curator")
    page.goto(f"{live_server.url}/releases/{release.pk}/")
    page.click(f"#run-link-{mm.pk}")
    page.wait_for_selector("#loss-chart")
    assert page.locator("h1").inner_text() == f"Training run #{mm.pk}: eval"
    curve = page.locator(f"#curve-{mm.pk}")
    assert curve.get_attribute("data-points") == "5"
    box = curve.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100  # drawn across the plot
    # The stroke comes from training.css, so the stylesheet was allowed and applied.
    stroke = page.evaluate(
        "(id) => getComputedStyle(document.getElementById(id)).stroke", f"curve-{mm.pk}"
    )
    assert stroke == "rgb(31, 111, 235)"
    ham = page.locator('#benchmark-table tr[data-name="HAM10000"]')
    assert "0.420" in ham.inner_text() and "classification" in ham.inner_text()
    vqa = page.locator('#benchmark-table tr[data-name="MM-Skin VQA"]')
    assert "0.350" in vqa.locator('td[data-metric="rouge_l"]').inner_text()

    page.goto(f"{live_server.url}/releases/{release.pk}/")
    page.check(f"#compare-{sft.pk}")
    page.check(f"#compare-{mm.pk}")
    page.check(f"#compare-{pubmm.pk}")
    page.click("#compare-button")
    page.wait_for_selector("#compare-table")
    assert page.locator("polyline.curve").count() == 2  # pubmm reported no curve
    row = page.locator('#compare-table tr[data-name="HAM10000"][data-metric="accuracy"]')
    cells = row.locator("td.num")
    assert [cells.nth(i).inner_text() for i in range(3)] == [NONE, "0.420", "0.610"]
    assert row.locator("td.best").inner_text() == "0.610"
    weight = page.evaluate(
        "() => getComputedStyle(document.querySelector('#compare-table td.best')).fontWeight"
    )
    assert weight == "700"

    page.goto(f"{live_server.url}/runs/compare/?run={mm.pk}")
    assert "at least two" in page.locator("#compare-error").inner_text()
    assert refused == []
