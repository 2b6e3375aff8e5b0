"""The release page's training form, the GPU workers it shows, and cancelling a run."""

import re
from datetime import timedelta

import pytest

from curation.models import Release, ReviewEvent, TrainingRun, WorkerHeartbeat
from curation.services import training as training_service
from curation.services.errors import NotAllowed


def test_curator_queues_a_training_run_from_the_release_page(client, make_user, db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    client.force_login(make_user("cur", "curator"))
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert 'id="train-form"' in page and "llava15_7b_lora" in page
    client.post(f"/releases/{release.pk}/train/",
                {"stage": "sft", "base": "llava15_7b_lora", "max_steps": "50"})  # fmt: skip
    run = TrainingRun.objects.get()
    assert run.status == "queued" and run.stage == "sft"
    assert run.config == {"base": "llava15_7b_lora", "train": {"max_steps": 50}}
    client.post(f"/releases/{release.pk}/train/", {"stage": "sft", "base": "../../etc/passwd"})
    client.post(f"/releases/{release.pk}/train/", {"stage": "pretrain", "base": "tiny_cpu"})
    assert TrainingRun.objects.count() == 1


def test_a_release_that_is_not_ready_cannot_be_trained_on(client, make_user, db):
    release = Release.objects.create(name="derm", version="1.0.0", status="building")
    client.force_login(make_user("cur", "curator"))
    response = client.post(f"/releases/{release.pk}/train/", {"stage": "sft", "base": "tiny_cpu"},
                           follow=True)  # fmt: skip
    assert "Only a built release" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_a_queued_run_is_claimed_by_exactly_one_worker(api_client_for, db):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    run = TrainingRun.objects.create(release=release, stage="sft")
    gpu1, gpu2 = (
        api_client_for("ml_worker", username="gpu1"),
        api_client_for("ml_worker", username="gpu2"),
    )
    first = gpu1.post(f"/api/training-runs/{run.pk}/claim/", {"worker": "gpu1"}, format="json")
    assert first.status_code == 200 and first.json()["status"] == "running"
    second = gpu2.post(f"/api/training-runs/{run.pk}/claim/", {"worker": "gpu2"}, format="json")
    assert second.status_code == 409 and second.json()["code"] == "taken"
    run.refresh_from_db()
    assert run.metrics["worker"] == "gpu1"


# -- the training form: every field validated, refused next to the field ----------------------


@pytest.fixture
def ready_release(db):
    return Release.objects.create(name="derm", version="1.0.0", status="ready")


@pytest.fixture
def curator_client(client, make_user):
    client.force_login(make_user("cur", "curator"))
    return client


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="error field-error" id="error-{field}"[^>]*>([^<]*)</p>', page)
    return found[1] if found else ""


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("lots", "Enter a whole number of steps"),
        ("0", "from 1 to 100000"),
        ("-5", "from 1 to 100000"),
        ("100001", "from 1 to 100000"),
        ("99999999999999999999999", "from 1 to 100000"),
    ],
)
def test_the_form_refuses_a_bad_max_steps_next_to_the_field(
    curator_client, ready_release, typed, message
):
    response = curator_client.post(
        f"/releases/{ready_release.pk}/train/",
        {"stage": "sft", "base": "llava15_7b_lora", "max_steps": typed},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert message in _field_error(page, "max_steps")
    assert f'value="{typed}"' in page  # what was typed is kept
    assert '<option value="llava15_7b_lora" selected>' in page
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"stage": "pretrain", "base": "tiny_cpu"}, "stage", "Select a valid choice"),
        ({"stage": "", "base": "tiny_cpu"}, "stage", "required"),
        ({"stage": "sft", "base": "../../etc/passwd"}, "base", "Select a valid choice"),
        ({"stage": "sft", "base": "tiny_cpu", "init_from_run": "x"}, "init_from_run", "number"),
        ({"stage": "sft", "base": "tiny_cpu", "init_from_run": "999"}, "init_from_run", "#999"),
        ({"stage": "sft", "base": "tiny_cpu", "overrides": "lr=1"}, "overrides", "section.key"),
        ({"stage": "sft", "base": "tiny_cpu", "overrides": "optim.lr=1"}, "overrides", "section"),
        (
            {"stage": "sft", "base": "tiny_cpu", "overrides": "train.output_dir=/tmp/x"},
            "overrides",
            "set by the worker",
        ),
        (
            {"stage": "sft", "base": "tiny_cpu", "overrides": "train.epochs=1000"},
            "overrides",
            "train.epochs must be a number above 0",
        ),
        (
            {"stage": "sft", "base": "tiny_cpu", "overrides": "train.max_steps=lots"},
            "overrides",
            "train.max_steps must be a whole number",
        ),
        (
            {
                "stage": "sft",
                "base": "tiny_cpu",
                "max_steps": "5",
                "overrides": "train.max_steps=6",
            },
            "overrides",
            "set in Max steps already",
        ),
    ],
)
def test_the_form_refuses_each_bad_field_with_its_message(
    curator_client, ready_release, data, field, message
):
    response = curator_client.post(f"/releases/{ready_release.pk}/train/", data)
    assert response.status_code == 400
    assert message in _field_error(response.content.decode(), field), response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_form_queues_overrides_as_config_sections(curator_client, ready_release):
    done = TrainingRun.objects.create(release=ready_release, stage="sft", status="done")
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert f'<option value="{done.pk}">#{done.pk} sft</option>' in page
    response = curator_client.post(
        f"/releases/{ready_release.pk}/train/",
        {
            "stage": "eval",
            "base": "tiny_cpu",
            "init_from_run": str(done.pk),
            "max_steps": "20",
            "overrides": "train.lr=2e-5\n# a comment\n\neval.max_new_tokens=32\n",
        },
    )
    assert response.status_code == 302
    run = TrainingRun.objects.exclude(pk=done.pk).get()
    assert run.stage == "eval" and run.config == {
        "base": "tiny_cpu",
        "init_from_run": done.pk,
        "train": {"lr": 2e-5, "max_steps": 20},
        "eval": {"max_new_tokens": 32},
    }


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"stage": "sft", "config": {"train": {"max_steps": "lots"}}}, "train.max_steps"),
        ({"stage": "sft", "config": {"train": {"max_steps": 0}}}, "train.max_steps"),
        ({"stage": "sft", "config": {"train": {"max_steps": -3}}}, "train.max_steps"),
        ({"stage": "sft", "config": {"train": {"max_steps": 10**9}}}, "train.max_steps"),
        ({"stage": "sft", "config": {"train": {"max_steps": True}}}, "train.max_steps"),
        ({"stage": "sft", "config": {"base": "gpt5"}}, "base"),
        ({"stage": "sft", "config": {"optimiser": {"lr": 1}}}, "optimiser"),
        ({"stage": "sft", "config": {"data": {"release": "/etc"}}}, "data.release"),
        ({"stage": "sft", "config": {"init_from_run": 12345}}, "init_from_run"),
        ({"stage": "sft", "config": ["not", "a", "mapping"]}, "config"),
    ],
)
def test_the_api_applies_the_same_rules(api_client_for, ready_release, payload, key):
    response = api_client_for("curator").post(
        "/api/training-runs/", {"release": ready_release.pk, **payload}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_config" and key in body["fields"], body
    assert not TrainingRun.objects.exists()


def test_the_api_refuses_an_unknown_stage(api_client_for, ready_release):
    response = api_client_for("curator").post(
        "/api/training-runs/", {"release": ready_release.pk, "stage": "pretrain"}, format="json"
    )
    assert response.status_code == 400 and "stage" in response.json()
    assert not TrainingRun.objects.exists()


def test_run_config_vocabulary_matches_the_worker():
    """curation may not import ml; the copies of ml's run-config vocabulary must agree."""
    from ml import worker

    assert training_service.RUN_CONFIG_SECTIONS == worker.SECTIONS
    assert {f"{s}.{k}" for s, k in worker.WORKER_OWNED} == training_service.WORKER_OWNED
    assert set(TrainingRun.Stage.values) == set(worker.STAGES)


# -- connected workers ---------------------------------------------------------------------------
def test_no_worker_says_runs_will_wait(curator_client, ready_release):
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert "No GPU worker connected" in page and "runs will wait" in page
    assert 'id="worker-list"' not in page


def test_a_polling_worker_is_listed_with_its_last_poll(
    curator_client, ready_release, api_client_for
):
    gpu = api_client_for("ml_worker", username="gpu-a")
    poll = {"worker": "box1:42", "hostname": "box1", "stages": ["sft", "eval"], "poll_s": 30}
    for _ in range(3):
        response = gpu.post("/api/training-runs/heartbeat/", poll, format="json")
        assert response.status_code == 200 and response.json()["worker"] == "box1:42"
    beat = WorkerHeartbeat.objects.get()
    assert (beat.user, beat.hostname, beat.stages) == (gpu.user, "box1", ["sft", "eval"])
    # One audit row for the worker's first poll, not one per poll.
    assert ReviewEvent.objects.filter(action=training_service.WORKER_SEEN_EVENT).count() == 1
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert "box1:42" in page and "gpu-a" in page and "idle" in page
    assert re.search(r"last seen \d+ s ago", page)
    assert "No GPU worker connected" not in page

    # Twelve minutes without a poll: listed as gone, and the page says nothing will run.
    WorkerHeartbeat.objects.update(last_seen=beat.last_seen - timedelta(minutes=12))
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert "last seen 12 min ago" in page and "gone" in page
    assert "No GPU worker connected" in page


def test_a_worker_that_polls_rarely_is_judged_by_its_own_interval(
    curator_client, ready_release, api_client_for
):
    gpu = api_client_for("ml_worker", username="gpu-a")
    gpu.post("/api/training-runs/heartbeat/", {"worker": "w", "poll_s": 600}, format="json")
    beat = WorkerHeartbeat.objects.get()
    WorkerHeartbeat.objects.update(last_seen=beat.last_seen - timedelta(minutes=12))
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert "last seen 12 min ago" in page and "No GPU worker connected" not in page


def test_a_claim_counts_as_a_poll_and_a_busy_worker_is_shown_busy(
    curator_client, ready_release, api_client_for
):
    run = TrainingRun.objects.create(release=ready_release, stage="sft")
    gpu = api_client_for("ml_worker", username="gpu-a")
    claimed = gpu.post(
        f"/api/training-runs/{run.pk}/claim/", {"worker": "box2:7", "hostname": "box2"},
        format="json",
    )  # fmt: skip
    assert claimed.status_code == 200
    assert WorkerHeartbeat.objects.get().hostname == "box2"
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert f"running #{run.pk}" in page and "No idle GPU worker: 1 busy" in page


def test_a_heartbeat_needs_a_worker_name(api_client_for):
    response = api_client_for("ml_worker").post("/api/training-runs/heartbeat/", {}, format="json")
    assert response.status_code == 400 and "worker" in response.json()
    assert not WorkerHeartbeat.objects.exists()


# -- cancel ------------------------------------------------------------------------------------
def test_a_cancelled_queued_run_is_never_claimed(curator_client, ready_release, api_client_for):
    run = TrainingRun.objects.create(release=ready_release, stage="sft")
    page = curator_client.get(f"/releases/{ready_release.pk}/").content.decode()
    assert f'id="cancel-run-{run.pk}"' in page
    response = curator_client.post(
        f"/releases/{ready_release.pk}/runs/{run.pk}/cancel/", follow=True
    )
    assert f"Training run #{run.pk} cancelled." in response.content.decode()
    run.refresh_from_db()
    assert run.status == "cancelled" and "Cancelled by cur" in run.error
    event = ReviewEvent.objects.get(action=training_service.CANCELLED_EVENT)
    assert event.target_id == run.pk and event.actor.username == "cur"
    assert event.before == {"status": "queued"} and event.after["status"] == "cancelled"
    assert f'id="cancel-run-{run.pk}"' not in response.content.decode()

    gpu = api_client_for("ml_worker", username="gpu1")
    listed = gpu.get("/api/training-runs/", {"status": "queued"}).json()
    assert listed["count"] == 0 if isinstance(listed, dict) else listed == []
    claim = gpu.post(f"/api/training-runs/{run.pk}/claim/", {"worker": "gpu1"}, format="json")
    assert claim.status_code == 409
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_a_cancelled_running_run_refuses_the_next_report(api_client_for, ready_release):
    run = TrainingRun.objects.create(release=ready_release, stage="sft")
    gpu = api_client_for("ml_worker", username="gpu1")
    gpu.post(f"/api/training-runs/{run.pk}/claim/", {"worker": "gpu1"}, format="json")
    cancelled = api_client_for("curator").post(f"/api/training-runs/{run.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    report = gpu.patch(
        f"/api/training-runs/{run.pk}/", {"status": "running", "progress": 0.5}, format="json"
    )
    assert report.status_code == 409
    assert report.json()["code"] == "cancelled" and report.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.progress == 0.0
    again = api_client_for("admin").post(f"/api/training-runs/{run.pk}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "finished"


@pytest.mark.parametrize("role", ["expert", "ml_worker"])
def test_only_curators_and_admins_cancel(role, client, make_user, api_client_for, ready_release):
    run = TrainingRun.objects.create(release=ready_release, stage="sft")
    assert api_client_for(role).post(f"/api/training-runs/{run.pk}/cancel/").status_code == 403
    client.force_login(make_user(f"{role}-html", role))
    assert client.post(f"/releases/{ready_release.pk}/runs/{run.pk}/cancel/").status_code == 403
    with pytest.raises(NotAllowed):
        training_service.cancel_training_run(run.pk, make_user(f"{role}-svc", role))
    run.refresh_from_db()
    assert run.status == "queued"
    assert not ReviewEvent.objects.filter(action=training_service.CANCELLED_EVENT).exists()


def test_a_finished_run_cannot_be_cancelled(curator_client, ready_release):
    run = TrainingRun.objects.create(release=ready_release, stage="sft", status="done")
    response = curator_client.post(
        f"/releases/{ready_release.pk}/runs/{run.pk}/cancel/", follow=True
    )
    assert "already ended (done)" in response.content.decode()
    run.refresh_from_db()
    assert run.status == "done"
