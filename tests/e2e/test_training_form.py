"""A curator types a bad max-steps value into the training form and sees it refused next to
the field, fixes it, queues the run and cancels it again from the release page."""

import pytest

from curation.models import Release, TrainingRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def release(transactional_db):
    return Release.objects.create(name="derm", version="1.0.0", status="ready")


def test_curator_sees_the_max_steps_refusal_then_queues_and_cancels(
    login, page, release, live_server
):
    login("cat", "curator")
    page.goto(f"{live_server.url}/releases/{release.pk}/")
    assert "No GPU worker connected" in page.locator("#no-worker").inner_text()

    page.select_option("#id_stage", "sft")
    page.select_option("#id_base", "llava15_7b_lora")
    page.fill("#id_max_steps", "lots")
    page.click("#queue-run")
    page.wait_for_selector("#error-max_steps")
    assert "whole number" in page.locator("#error-max_steps").inner_text()
    assert page.input_value("#id_max_steps") == "lots"  # what was typed stays
    assert page.input_value("#id_base") == "llava15_7b_lora"
    assert not TrainingRun.objects.exists()

    page.fill("#id_max_steps", "200")
    page.click("#queue-run")
    page.wait_for_selector("text=queued; a GPU worker will pick it up")
    run = TrainingRun.objects.get()
    assert page.locator(f"#cancel-run-{run.pk}").count() == 1
    assert run.config == {"base": "llava15_7b_lora", "train": {"max_steps": 200}}
    assert page.locator("#error-max_steps").count() == 0

    page.click(f"#cancel-run-{run.pk}")
    page.wait_for_selector(f"text=Training run #{run.pk} cancelled.")
    assert page.locator(f"#cancel-run-{run.pk}").count() == 0
    assert "cancelled" in page.locator(f"#run-{run.pk}").inner_text()
    run.refresh_from_db()
    assert run.status == "cancelled"
