"""A training run belongs to the worker that claimed it: no other worker reports into it."""

from __future__ import annotations

import importlib

import pytest

from curation.models import Release, ReviewEvent, TrainingRun
from curation.services import training as training_service
from curation.services.errors import NotAllowed


@pytest.fixture
def run(db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    return TrainingRun.objects.create(release=release, stage="sft")


@pytest.fixture
def gpus(make_user):
    return make_user("gpu1", "ml_worker"), make_user("gpu2", "ml_worker")


def _reports(run) -> int:
    return ReviewEvent.objects.filter(target_id=run.pk, action="training.reported").count()


# -- the service -------------------------------------------------------------------------------
def test_a_claim_records_who_claimed(run, gpus):
    gpu1, _ = gpus
    claimed = training_service.claim_training_run(run.pk, gpu1, "box-1")
    assert claimed.claimed_by == gpu1
    run.refresh_from_db()
    assert run.claimed_by_id == gpu1.pk


def test_the_claiming_worker_reports(run, gpus):
    gpu1, _ = gpus
    training_service.claim_training_run(run.pk, gpu1, "box-1")
    done = training_service.report_training_run(
        run.pk, gpu1, {"status": "done", "progress": 1.0, "metrics": {"loss": 0.1}}
    )
    assert done.status == "done" and done.metrics == {"worker": "box-1", "loss": 0.1}


def test_another_worker_is_refused_and_nothing_changes(run, gpus):
    gpu1, gpu2 = gpus
    training_service.claim_training_run(run.pk, gpu1, "box-1")
    with pytest.raises(NotAllowed) as refused:
        training_service.report_training_run(run.pk, gpu2, {"status": "failed", "error": "x"})
    assert refused.value.status == 403 and refused.value.code == "not_yours"
    assert "claimed by gpu1" in refused.value.message
    run.refresh_from_db()
    assert run.status == "running" and run.error == "" and run.claimed_by_id == gpu1.pk
    assert _reports(run) == 0


def test_a_worker_cannot_report_into_an_unclaimed_run(run, gpus):
    gpu1, _ = gpus
    with pytest.raises(NotAllowed) as refused:
        training_service.report_training_run(run.pk, gpu1, {"status": "running"})
    assert refused.value.code == "not_claimed" and "claim it first" in refused.value.message
    run.refresh_from_db()
    assert run.status == "queued" and _reports(run) == 0


def test_the_creator_of_a_run_is_not_its_owner_until_it_claims(run, gpus):
    gpu1, _ = gpus
    created = training_service.create_training_run(run.release, "sft", {}, gpu1)
    with pytest.raises(NotAllowed):
        training_service.report_training_run(created.pk, gpu1, {"progress": 0.5})


@pytest.mark.parametrize("role", ["curator", "admin"])
def test_a_curator_or_admin_may_report_into_any_run(run, gpus, make_user, role):
    gpu1, _ = gpus
    training_service.claim_training_run(run.pk, gpu1, "box-1")
    staff = make_user(f"staff-{role}", role)
    ended = training_service.report_training_run(
        run.pk, staff, {"status": "failed", "error": "stopped by hand"}
    )
    assert ended.status == "failed" and ended.claimed_by_id == gpu1.pk


def test_runs_claimed_before_the_field_existed_keep_their_worker(run, gpus):
    """The migration's backfill: the claim's audit row names the claimer."""
    gpu1, _ = gpus
    training_service.claim_training_run(run.pk, gpu1, "box-1")
    TrainingRun.objects.filter(pk=run.pk).update(claimed_by=None)
    migration = importlib.import_module("curation.migrations.0010_trainingrun_claimed_by")
    from django.apps import apps

    migration.claimers_from_the_audit(apps, None)
    run.refresh_from_db()
    assert run.claimed_by_id == gpu1.pk


# -- the API -----------------------------------------------------------------------------------
@pytest.fixture
def clients(api_client_for):
    return (
        api_client_for("ml_worker", username="gpu1"),
        api_client_for("ml_worker", username="gpu2"),
    )


def test_api_only_the_claimer_reports(run, clients):
    gpu1, gpu2 = clients
    url = f"/api/training-runs/{run.pk}/"
    claimed = gpu1.post(f"{url}claim/", {"worker": "box-1"}, format="json")
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "gpu1"

    other = gpu2.patch(url, {"status": "failed", "error": "hijack"}, format="json")
    assert other.status_code == 403
    body = other.json()
    assert body["code"] == "not_yours"
    assert "claimed by gpu1" in body["detail"] and "only that worker" in body["detail"]
    run.refresh_from_db()
    assert run.status == "running" and run.error == ""

    mine = gpu1.patch(url, {"progress": 0.5, "metrics": {"loss": 1.0}}, format="json")
    assert mine.status_code == 200 and mine.json()["progress"] == 0.5
    assert gpu2.get(url).json()["claimed_by"] == "gpu1"  # anyone may still read it


def test_api_an_unclaimed_run_is_refused_to_a_worker(run, clients):
    gpu1, _ = clients
    response = gpu1.patch(f"/api/training-runs/{run.pk}/", {"progress": 0.5}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_claimed"
    assert "claim" in response.json()["detail"]


def test_api_a_curator_can_end_a_workers_run(run, clients, api_client_for):
    gpu1, _ = clients
    gpu1.post(f"/api/training-runs/{run.pk}/claim/", {"worker": "box-1"}, format="json")
    curator = api_client_for("curator")
    response = curator.patch(
        f"/api/training-runs/{run.pk}/", {"status": "failed", "error": "cancelled"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "failed"
