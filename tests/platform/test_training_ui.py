from curation.models import Release, TrainingRun


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
