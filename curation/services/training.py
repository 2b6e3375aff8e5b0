"""Training runs reported by GPU workers over the API."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from curation import limits
from curation.events import EventAction
from curation.models import Release, TrainingRun, WorkerHeartbeat
from curation.services.audit import record_event
from curation.services.errors import Conflict, NotAllowed, ServiceError
from curation.services.roles import require_role
from skinplatform.accounts.roles import STAFF, has_any_role

_TERMINAL = {TrainingRun.Status.DONE, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}
CANCELLABLE = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
CANCELLED_EVENT = EventAction.TRAINING_CANCELLED
WORKER_SEEN_EVENT = EventAction.TRAINING_WORKER_SEEN

# A run's config: the sections of ml's Config (ml.worker.SECTIONS; curation never imports ml,
# so a test checks the two lists agree), plus the two keys the worker reads itself.
RUN_CONFIG_SECTIONS = ("model", "lora", "data", "train", "dpo", "eval", "sft_cls")
RUN_CONFIG_KEYS = ("base", "init_from_run")
# Set by the worker from its own machine (ml.worker.WORKER_OWNED): a run may not point them.
WORKER_OWNED = frozenset({"data.release", "train.output_dir", "train.init_from"})
# Upper bounds that stop a typo from queueing a run that holds a GPU for days.
MAX_TRAIN_STEPS = 100_000
MAX_EPOCHS = 100
_SETTING_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
# Heartbeats of workers not seen for this long are deleted when a new worker first polls.
_HEARTBEAT_KEEP = timedelta(days=7)


SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "ml" / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs shipped in ml/configs (read as files: curation never imports ml)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


class InvalidRunConfig(ServiceError):
    """A run config that breaks a rule of `check_run_config`; `errors` maps a dotted key to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        message = "; ".join(f"{key} {why}" for key, why in self.errors.items())
        super().__init__("invalid_config", message, extra={"fields": self.errors})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_init_from(value: Any) -> str | None:
    if not _is_int(value) or value < 1:
        return "must be the id of an earlier training run."
    status = TrainingRun.objects.filter(pk=value).values_list("status", flat=True).first()
    if status is None:
        return f"names no training run (#{value})."
    if status in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED):
        return f"names run #{value}, which {status}: it left no artefacts to start from."
    return None


def _check_section(section: str, values: Any, errors: dict[str, str]) -> None:
    if not isinstance(values, dict):
        errors[section] = "must be a mapping of setting names to values."
        return
    for key, value in values.items():
        path = f"{section}.{key}"
        if not isinstance(key, str) or not _SETTING_RE.match(key):
            errors[path] = "is not a setting name (lower-case letters, digits and _)."
        elif path in WORKER_OWNED:
            errors[path] = "is set by the worker, not by a run."
        elif isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        ):
            errors[path] = "must be a plain value or a list of plain values."


def check_run_config(config: Any) -> dict:
    """The one validation of a run's config, used by the release page's form, the API and
    `create_training_run`: so a bad value is refused with its key, never dropped or passed on.

    Keys inside a section are checked for syntax only: ml's schema (which setting exists, of
    which type) lives in `ml`, which curation does not import; the worker refuses an unknown
    setting when it builds the run's config and reports the run failed with that error.
    """
    if not isinstance(config, dict):
        raise InvalidRunConfig({"config": "must be a JSON object."})
    errors: dict[str, str] = {}
    for key, value in config.items():
        if key == "base":
            if value not in shipped_configs():
                errors["base"] = f"must be one of the shipped configs: {shipped_configs()}."
        elif key == "init_from_run":
            if (why := _check_init_from(value)) is not None:
                errors["init_from_run"] = why
        elif key in RUN_CONFIG_SECTIONS:
            _check_section(key, value, errors)
        else:
            known = [*RUN_CONFIG_KEYS, *RUN_CONFIG_SECTIONS]
            errors[str(key)] = f"is not a key of a run's config; known: {known}."
    train = config.get("train")
    if isinstance(train, dict):
        if "max_steps" in train and not (
            _is_int(train["max_steps"]) and 1 <= train["max_steps"] <= MAX_TRAIN_STEPS
        ):
            errors["train.max_steps"] = f"must be a whole number from 1 to {MAX_TRAIN_STEPS}."
        if "epochs" in train and not (
            _is_number(train["epochs"]) and 0 < train["epochs"] <= MAX_EPOCHS
        ):
            errors["train.epochs"] = f"must be a number above 0 and at most {MAX_EPOCHS}."
    if errors:
        raise InvalidRunConfig(errors)
    return config


def create_training_run(release: Release, stage: str, config: dict, user) -> TrainingRun:
    if release.status != Release.Status.READY:
        raise ServiceError("release_not_ready", "Only a built release can be trained on.")
    if stage not in TrainingRun.Stage.values:
        raise ServiceError("invalid", f"stage must be one of {TrainingRun.Stage.values}.")
    limits.check_json("config", config, limits.TRAINING_CONFIG_BYTES)
    check_run_config(config)
    with transaction.atomic():
        run = TrainingRun.objects.create(
            release=release, stage=stage, config=config, reported_by=user
        )
        record_event(
            user, run, EventAction.TRAINING_CREATED, after={"stage": stage, "config": config}
        )
    return run


def report_training_run(run_id: int, user, changes: dict) -> TrainingRun:
    """Apply a worker's progress report; a finished run no longer changes."""
    _check_report(changes)
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        _require_owner(run, user)
        if run.status in _TERMINAL:
            raise _ended(run)
        before = {key: getattr(run, key) for key in changes}
        for key, value in changes.items():
            if key == "metrics":
                value = _merge_metrics(run.metrics, value)
                # Reports merge: many small ones must not add up past the limit either.
                limits.check_json("metrics", value, limits.TRAINING_METRICS_BYTES)
            setattr(run, key, value)
        run.reported_by = user
        run.save()
        record_event(user, run, EventAction.TRAINING_REPORTED, before=before, after=changes)
    return run


# The loss curve a worker reports: `metrics.curve` is a list of [step, loss] points. Each
# report sends only the points logged since its last one; they are appended here, so the
# curve costs a few bytes a report and the audit event holds what that report added.
CURVE_KEY = "curve"
CURVE_POINTS = 2000  # kept per run; beyond it every other older point is dropped


def _check_curve(points: Any) -> list[list[float]]:
    if not isinstance(points, list) or not all(
        isinstance(p, list | tuple) and len(p) == 2 and all(_is_number(v) for v in p)
        for p in points
    ):
        raise ServiceError("invalid", "metrics.curve must be a list of [step, loss] numbers.")
    steps = [p[0] for p in points]
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ServiceError("invalid", "metrics.curve steps must increase.")
    return [[p[0], p[1]] for p in points]


def merge_curve(old: Any, new: list[list[float]]) -> list[list[float]]:
    """Append a report's points. Points at or after the first new step are replaced (a run
    resumed from a checkpoint logs those steps again), and a curve over `CURVE_POINTS` keeps
    every other point of its older half, so the start stays drawn and the end stays exact."""
    old = old if isinstance(old, list) else []
    if not new:
        return old
    curve = [p for p in old if p[0] < new[0][0]] + new
    while len(curve) > CURVE_POINTS:
        half = len(curve) // 2
        curve = curve[:half:2] + curve[half:]
    return curve


def _merge_metrics(current: dict, report: dict) -> dict:
    """A report's metrics over the run's: keys replace, except the curve, which appends."""
    merged = {**current, **report}
    if CURVE_KEY in report:
        merged[CURVE_KEY] = merge_curve(current.get(CURVE_KEY), _check_curve(report[CURVE_KEY]))
    return merged


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
    if has_any_role(user, STAFF) or (  # staff may correct or end a run another account claimed
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
        record_event(user, run, EventAction.TRAINING_CLAIMED, after={"worker": worker})
    return run


def _ended(run: TrainingRun) -> Conflict:
    """The refusal of a report on an ended run; a cancelled run says so, and the worker stops."""
    if run.status == TrainingRun.Status.CANCELLED:
        return Conflict(
            "cancelled",
            f"Training run {run.pk} was cancelled; stop it.",
            extra={"status": run.status},
        )
    return Conflict("finished", f"Training run {run.pk} already ended ({run.status}).")


def cancel_training_run(run_id: int, user) -> TrainingRun:
    """Cancel a queued or running run (curators, admins).

    A queued run is then never handed out (`claim_training_run` takes queued runs only). A
    running one is marked cancelled at once; its worker learns it from the 409 its next
    progress report gets, and stops there.
    """
    require_role(user, STAFF, "cancel training runs")
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status not in CANCELLABLE:
            raise Conflict("finished", f"Training run {run_id} already ended ({run.status}).")
        before = {"status": run.status}
        run.status = TrainingRun.Status.CANCELLED
        run.error = f"Cancelled by {user.get_username()} while {before['status']}."
        run.save(update_fields=["status", "error", "updated_at"])
        record_event(
            user,
            run,
            CANCELLED_EVENT,
            before=before,
            after={"status": run.status, "worker": run.metrics.get("worker")},
        )
    return run


def record_worker_poll(
    user, worker: str, *, hostname: str = "", stages: list[str] | None = None, poll_s=None
) -> WorkerHeartbeat:
    """Note that a GPU worker asked for work now (it polls when idle, and claims).

    The row is overwritten on every poll; only a worker's first poll is an audit event (one
    per poll would bury the log under a row every 30 seconds per machine).
    """
    worker = worker.strip()[:200]
    if not worker:
        raise ServiceError("invalid", "worker names the polling worker.")
    values: dict[str, Any] = {"last_seen": timezone.now(), "hostname": hostname.strip()[:255]}
    if stages is not None:
        values["stages"] = [str(s) for s in stages]
    if poll_s is not None:
        values["poll_s"] = float(poll_s)
    with transaction.atomic():
        beat, created = WorkerHeartbeat.objects.update_or_create(
            user=user, worker=worker, defaults=values
        )
        if created:
            WorkerHeartbeat.objects.filter(
                last_seen__lt=values["last_seen"] - _HEARTBEAT_KEEP
            ).delete()
            record_event(
                user, beat, WORKER_SEEN_EVENT, after={"worker": worker, "hostname": beat.hostname}
            )
    return beat
