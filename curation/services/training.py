"""Training runs reported by GPU workers over the API."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from curation import limits
from curation.models import Release, TrainingRun
from curation.services.audit import record_event
from curation.services.errors import Conflict, NotAllowed, ServiceError
from skinplatform.accounts.roles import ADMIN, CURATOR, has_any_role

_TERMINAL = {TrainingRun.Status.DONE, TrainingRun.Status.FAILED}
# Who may report into a run that another account claimed (to correct or end it by hand).
OVERSEERS = frozenset({CURATOR, ADMIN})


SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "ml" / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ml/configs (read as files: curation never imports ml)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def create_training_run(release: Release, stage: str, config: dict, user) -> TrainingRun:
    if release.status != Release.Status.READY:
        raise ServiceError("release_not_ready", "Only a built release can be trained on.")
    if stage not in TrainingRun.Stage.values:
        raise ServiceError("invalid", f"stage must be one of {TrainingRun.Stage.values}.")
    limits.check_json("config", config, limits.TRAINING_CONFIG_BYTES)
    base = config.get("base")
    if base is not None and base not in shipped_configs():
        raise ServiceError("invalid", f"config.base must be one of {shipped_configs()}.")
    with transaction.atomic():
        run = TrainingRun.objects.create(
            release=release, stage=stage, config=config, reported_by=user
        )
        record_event(user, run, "training.created", after={"stage": stage, "config": config})
    return run


def report_training_run(run_id: int, user, changes: dict) -> TrainingRun:
    """Apply a worker's progress report; a finished run no longer changes."""
    _check_report(changes)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        _require_owner(run, user)
        if run.status in _TERMINAL:
            raise Conflict("finished", f"Training run {run_id} already ended ({run.status}).")
        before = {key: getattr(run, key) for key in changes}
        for key, value in changes.items():
            if key == "metrics":
                value = {**run.metrics, **value}
                # Reports merge: many small ones must not add up past the limit either.
                limits.check_json("metrics", value, limits.TRAINING_METRICS_BYTES)
            setattr(run, key, value)
        run.reported_by = user
        run.save()
        record_event(user, run, "training.reported", before=before, after=changes)
    return run


def _check_report(changes: dict) -> None:
    if isinstance(changes.get("error"), str):
        limits.check_text("error", changes["error"], limits.TRAINING_ERROR, "error message")
    if isinstance(changes.get("artefacts_uri"), str):
        limits.check_text("artefacts_uri", changes["artefacts_uri"], limits.ARTEFACTS_URI)
    if "metrics" in changes:
        limits.check_json("metrics", changes["metrics"], limits.TRAINING_METRICS_BYTES)


def _require_owner(run: TrainingRun, user) -> None:
    """A run is reported into by the account that claimed it, or by a curator or admin.

    Worker identity is the API token's account: two processes sharing one token are one
    worker here (the ``worker`` name they send is their own word and proves nothing).
    """
    if has_any_role(user, OVERSEERS) or (
        run.claimed_by_id is not None and run.claimed_by_id == user.pk
    ):
        return
    if run.claimed_by_id is None:
        raise NotAllowed(
            "not_claimed",
            f"Training run {run.pk} is not claimed by you: claim it first "
            f"(POST /api/training-runs/{run.pk}/claim/), then report into it.",
        )
    raise NotAllowed(
        "not_yours",
        f"Training run {run.pk} was claimed by {run.claimed_by.get_username()}; only that "
        "worker (or a curator) can report into it.",
    )


def claim_training_run(run_id: int, user, worker: str) -> TrainingRun:
    """Hand a queued run to exactly one worker: the row lock makes the check-and-set atomic."""
    limits.check_text("worker", worker, limits.WORKER_NAME, "worker name")
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status != TrainingRun.Status.QUEUED:
            raise Conflict("taken", f"Training run {run_id} is {run.status}, not queued.")
        run.status = TrainingRun.Status.RUNNING
        run.progress = 0.0
        run.error = ""
        run.metrics = {**run.metrics, "worker": worker}
        run.reported_by = user
        run.claimed_by = user
        run.save()
        record_event(user, run, "training.claimed", after={"worker": worker})
    return run
