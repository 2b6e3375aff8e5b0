"""`python -m ml worker`: take queued TrainingRuns from the platform's API, run them, report back.

The worker polls `GET /api/training-runs/?status=queued` (no Celery on the GPU machine: it
needs only an ml_worker token and HTTPS to the platform), claims the oldest run by PATCHing it
to `running`, pulls and verifies its release, runs the stage in-process and streams progress
and metrics into the run with PATCH; at the end it reports `done` with the final metrics and
the artefacts' location, or `failed` with the error.

Each idle poll is announced first (`POST /api/training-runs/heartbeat/`), so the release page
can say which workers are connected. A curator may cancel a run while it trains: the platform
then answers the worker's next progress report with 409 `cancelled`, and the worker stops the
stage there (the report raises out of the training loop), reports nothing more into the run,
and records it as `cancelled` among the runs it handled.

A worker that dies mid-run (SIGKILL, a reboot, the OOM killer) leaves its run `running` on
the platform and its claim in `WORKDIR/claims/`. The next worker started on that workdir, with
the same account's token, resumes such runs first, from their newest checkpoint
(`train.save_every`), before it takes queued ones; a file lock per run keeps two workers on
one workdir from training the same run.

A run's `config` (set on the platform) is layered as:

1. the shipped config named by `config.base` (e.g. `llava15_7b_lora`), else the worker's
   `--config` file;
2. the run's own sections (`model`, `lora`, `data`, `train`, `dpo`, `eval`), e.g.
   `{"train": {"max_steps": 500}}`;
3. the worker's `--set` overrides: facts of this machine (`model.path`) always win;
4. what only the worker decides: `data.release` (the pulled folder), `train.output_dir`
   (`WORKDIR/runs/run-ID`) and `train.init_from`, from `config.init_from_run` (the id of an
   earlier run whose artefacts this worker can read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from ml.client import ApiError, PlatformClient, pull_release
from ml.config import Config, ConfigError, apply_overrides, config_from_dict

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
STAGES = ("align", "sft", "dpo", "eval", "sft_cls")
SECTIONS = ("model", "lora", "data", "train", "dpo", "eval", "sft_cls")
# The platform refuses an error report over 20,000 characters (curation/limits.py): the
# message and the traceback's tail are cut so that a failure is always reported.
ERROR_MESSAGE_CHARS = 4000
# Keys of a run's config the worker owns: a run may not point them elsewhere.
WORKER_OWNED = {("data", "release"), ("train", "output_dir"), ("train", "init_from")}


class WorkerStopped(Exception):
    """SIGTERM/SIGINT while a run was in progress: the run is reported failed, then we exit."""


class RunCancelled(Exception):
    """The platform refused a report because the run was cancelled: stop the run, quietly."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"training run {run_id} was cancelled on the platform")
        self.run_id = run_id


@dataclass
class WorkerOptions:
    """How this worker runs (its machine's facts, not a run's)."""

    config: str | None = None  # default base config when a run names none
    overrides: list[str] = field(default_factory=list)
    workdir: str = "mlwork"
    stages: tuple[str, ...] = STAGES
    poll_s: float = 30.0
    report_every_s: float = 15.0
    once: bool = False  # take at most one run, then exit (cron, tests)
    max_jobs: int = 0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


# -- config ---------------------------------------------------------------------------------
def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _base_config(run_config: dict[str, Any], opts: WorkerOptions) -> dict[str, Any]:
    base = run_config.get("base")
    if base:
        if not isinstance(base, str) or not base.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"config.base must name a file of ml/configs, got {base!r}")
        path = CONFIG_DIR / f"{base}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise ConfigError(f"config.base {base!r} is not a shipped config; known: {known}")
    elif opts.config:
        path = Path(opts.config)
    else:
        raise ConfigError("the run names no config.base and the worker has no --config")
    return yaml.safe_load(path.read_text("utf-8")) or {}


def run_config(
    run: dict[str, Any], opts: WorkerOptions, release_dir: Path, output_dir: Path, init_from
) -> Config:
    """The effective config of a run (see the module docstring for the layering)."""
    raw_run = run.get("config") or {}
    if not isinstance(raw_run, dict):
        raise ConfigError("a run's config must be a JSON object")
    unknown = set(raw_run) - set(SECTIONS) - {"base", "init_from_run"}
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in the run's config")
    sections = {k: v for k, v in raw_run.items() if k in SECTIONS}
    for section, key in WORKER_OWNED:
        if key in (sections.get(section) or {}):
            raise ConfigError(f"{section}.{key} is set by the worker, not by the run")
    data = _deep_merge(_base_config(raw_run, opts), sections)
    data = apply_overrides(data, list(opts.overrides))
    data.setdefault("data", {})["release"] = str(release_dir)
    data.setdefault("train", {})["output_dir"] = str(output_dir)
    data["train"]["init_from"] = str(init_from) if init_from else None
    return config_from_dict(data)


# -- the API side of a run --------------------------------------------------------------------
class RunReporter:
    """PATCHes a run's progress, at most every `every_s` seconds (the first and last always)."""

    def __init__(self, client: PlatformClient, run_id: int, every_s: float) -> None:
        self.client, self.run_id, self.every_s = client, run_id, every_s
        self._last = 0.0
        # [step, loss] of every logged step not yet reported: the platform appends them to
        # the run's `metrics.curve` (its loss chart), so throttled reports lose no point.
        self.curve_pending: list[list[float]] = []

    def patch(self, **changes: Any) -> dict[str, Any]:
        """One report; `RunCancelled` when the platform says the run was cancelled."""
        try:
            return self.client.json(f"training-runs/{self.run_id}/", "PATCH", changes)
        except ApiError as exc:
            if exc.status == 409 and exc.code == "cancelled":
                raise RunCancelled(self.run_id) from None
            raise

    def on_log(self, record: dict[str, Any]) -> None:
        """The stages' logging hook: one training step's numbers."""
        total = record.get("total_steps") or 0
        final = bool(total) and record.get("step") == total
        if isinstance(record.get("loss"), int | float) and isinstance(record.get("step"), int):
            if self.curve_pending and self.curve_pending[-1][0] >= record["step"]:
                self.curve_pending.clear()  # the loop restarted (a resume): send from here
            self.curve_pending.append([record["step"], record["loss"]])
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        progress = min(1.0, record["step"] / total) if total else 0.0
        metrics: dict[str, Any] = {k: v for k, v in record.items() if isinstance(v, int | float)}
        sent = list(self.curve_pending)
        if sent:
            metrics["curve"] = sent
        try:
            self.patch(status="running", progress=round(progress * 0.99, 4), metrics=metrics)
        except ApiError as exc:  # a lost progress report must not kill the training
            log.warning("progress report for run %s failed: %s", self.run_id, exc)
            return
        del self.curve_pending[: len(sent)]


def next_queued(client: PlatformClient, stages: tuple[str, ...]) -> dict[str, Any] | None:
    """The oldest queued run of a stage this worker takes."""
    rows = [
        r
        for r in client.paged("training-runs/", {"status": "queued"})
        if r.get("status") == "queued" and r.get("stage") in stages
    ]
    if not rows:
        return None
    return min(rows, key=lambda r: (r.get("created_at") or "", r.get("id") or 0))


def _about(opts: WorkerOptions) -> dict[str, Any]:
    return {
        "worker": opts.worker_id,
        "hostname": socket.gethostname(),
        "stages": list(opts.stages),
        "poll_s": opts.poll_s,
    }


def heartbeat(client: PlatformClient, opts: WorkerOptions) -> None:
    """Tell the platform this worker is idle and polling; a failure never stops the worker."""
    try:
        client.json("training-runs/heartbeat/", "POST", _about(opts))
    except ApiError as exc:
        level = logging.DEBUG if exc.status == 404 else logging.WARNING  # an older platform
        log.log(level, "heartbeat failed: %s", exc)


def claim(client: PlatformClient, run: dict[str, Any], worker_id: str, about=None) -> bool:
    """Take the run for this worker; the platform answers 409 when another worker has it
    (or the run was cancelled meanwhile)."""
    body = {**(about or {}), "worker": worker_id}
    try:
        taken = client.json(f"training-runs/{run['id']}/claim/", "POST", body)
    except ApiError as exc:
        if exc.status in (404, 409):
            return False
        raise
    return taken.get("status") == "running"


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme and uri:
        return Path(uri)
    return None


def resolve_init_from(client: PlatformClient, run_config_: dict[str, Any]) -> Path | None:
    """The artefact folder of `config.init_from_run`, which must be done and readable here."""
    ref = run_config_.get("init_from_run")
    if ref in (None, ""):
        return None
    prev = client.json(f"training-runs/{int(ref)}/")
    if prev.get("status") != "done":
        raise ConfigError(f"init_from_run {ref} is {prev.get('status')!r}, not done")
    path = _local_path(prev.get("artefacts_uri") or "")
    if path is None or not path.is_dir():
        raise ConfigError(
            f"the artefacts of run {ref} ({prev.get('artefacts_uri')!r}) are not readable on "
            "this worker; share --workdir between workers or run the chain on one machine"
        )
    return path


def write_artefact_index(out: Path) -> dict[str, Any]:
    """`artefacts.json`: every file of the run folder with its size and sha256."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "artefacts.json":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[str(path.relative_to(out))] = {"size": path.stat().st_size, "sha256": digest}
    index = {"files": files}
    (out / "artefacts.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return {"files": len(files), "bytes": sum(f["size"] for f in files.values())}


def _final_metrics(stage: str, result: dict[str, Any]) -> dict[str, Any]:
    if stage == "eval":
        return {
            # `python -m ml eval --suite`'s headline figures per benchmark (eval.suite).
            **({"benchmarks": result["benchmarks"]} if result.get("benchmarks") else {}),
            "eval": {
                "vqa": result.get("vqa", {}),
                "modality_classification": result.get("modality_classification", {}),
                "diagnosis_classification": result.get("diagnosis_classification", {}),
                "decoding": result.get("decoding", {}),
                "split": result.get("split"),
            },
        }
    scalars = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool | None)}
    if isinstance(result.get("sources"), dict):  # per-source counts of a mixed run
        scalars["sources"] = result["sources"]
    return scalars


# -- runs that survive the worker -------------------------------------------------------------
def _claim_file(work: Path, run_id: int) -> Path:
    return work / "claims" / f"run-{run_id}.json"


@contextlib.contextmanager
def run_lock(work: Path, run_id: int) -> Iterator[bool]:
    """An exclusive lock on a run for processes sharing this workdir (False: another has it).

    `flock` is released by the kernel when its holder dies, SIGKILL included, so a dead
    worker's run is free for the next worker to resume.
    """
    import fcntl

    path = work / "locks" / f"run-{run_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resumable_runs(client: PlatformClient, opts: WorkerOptions) -> list[dict[str, Any]]:
    """Runs this workdir claimed whose worker died: still `running` on the platform.

    A claim is recorded in `WORKDIR/claims/` when a run starts and removed when it ends
    (done, failed or cancelled), so what is left is a run whose process was killed. Ended
    runs' claims are cleared here.
    """
    work = Path(opts.workdir).resolve()
    out = []
    for path in sorted((work / "claims").glob("run-*.json")):
        run_id = int(path.stem.removeprefix("run-"))
        try:
            run = client.json(f"training-runs/{run_id}/")
        except ApiError as exc:
            if exc.status == 404:
                path.unlink(missing_ok=True)
            else:
                log.warning("cannot check run %s for resuming: %s", run_id, exc)
            continue
        if run.get("status") == "running" and run.get("stage") in opts.stages:
            out.append(run)
        elif run.get("status") != "running":
            path.unlink(missing_ok=True)
    return out


def execute(
    client: PlatformClient, run: dict[str, Any], opts: WorkerOptions, resume: bool = False
) -> str:
    """Run one claimed TrainingRun to the end; returns the status reported.

    With `resume`, the run died under an earlier worker: it continues from its newest
    checkpoint in this workdir (from step 0 when it had none).
    """
    work = Path(opts.workdir).resolve()
    with run_lock(work, int(run["id"])) as mine:
        if not mine:
            log.info("run %s is being trained by another worker on this workdir", run["id"])
            return "busy"
        claim_file = _claim_file(work, int(run["id"]))
        claim_file.parent.mkdir(parents=True, exist_ok=True)
        claim_file.write_text(json.dumps({"run": run["id"], "worker": opts.worker_id}) + "\n")
        status = _execute(client, run, opts, resume)
        if status in ("done", "failed", "cancelled"):
            claim_file.unlink(missing_ok=True)
        return status


def _execute(client: PlatformClient, run: dict[str, Any], opts: WorkerOptions, resume: bool):
    run_id, stage = int(run["id"]), run["stage"]
    reporter = RunReporter(client, run_id, opts.report_every_s)
    work = Path(opts.workdir).resolve()
    output_dir = work / "runs" / f"run-{run_id}"
    try:
        release_dir = work / "releases" / str(int(run["release"]))
        pulled = pull_release(client, str(int(run["release"])), release_dir)
        init_from = resolve_init_from(client, run.get("config") or {})
        cfg = run_config(run, opts, release_dir, output_dir, init_from)
        cfg.train.resume = resume
        output_dir.mkdir(parents=True, exist_ok=True)
        started = {"release": pulled.release, "worker": opts.worker_id}
        if resume:
            started["resumed_by"] = opts.worker_id
        reporter.patch(
            status="running",
            progress=run.get("progress", 0.0) if resume else 0.0,
            metrics=started,
            artefacts_uri=output_dir.as_uri(),
        )
        log.info("run %s: %s on %s -> %s", run_id, stage, pulled.release, output_dir)
        if stage == "eval":
            from ml.evaluate import run_eval

            result = run_eval(cfg)
            if cfg.eval.suite:
                from ml.bench_eval import evaluate_benchmarks
                from ml.benchmarks import load_suite

                result["benchmarks"] = evaluate_benchmarks(cfg, load_suite(cfg.eval.suite))[
                    "summary"
                ]
        else:
            from ml.stages import get_stage

            result = get_stage(stage)(cfg, on_log=reporter.on_log)
        artefacts = write_artefact_index(output_dir)
        reporter.patch(
            status="done",
            progress=1.0,
            metrics={**_final_metrics(stage, result), "artefacts": artefacts},
            artefacts_uri=output_dir.as_uri(),
        )
        log.info("run %s: done", run_id)
        return "done"
    except RunCancelled:
        # The platform already holds the run as cancelled and takes no more reports into it.
        log.warning("run %s was cancelled on the platform; stopped", run_id)
        return "cancelled"
    except (Exception, WorkerStopped) as exc:
        detail = "".join(traceback.format_exception(exc))[-4000:]
        log.error("run %s failed: %s", run_id, exc)
        with contextlib.suppress(ApiError):
            message = f"{type(exc).__name__}: {exc}"[:ERROR_MESSAGE_CHARS]
            reporter.patch(status="failed", error=f"{message}\n\n{detail}")
        if isinstance(exc, WorkerStopped):
            raise
        return "failed"


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM (a deploy, a preemption) stops the current run as failed instead of orphaning it."""

    def handler(signum, frame):
        raise WorkerStopped(f"worker stopped by signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests): no handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_worker(client: PlatformClient, opts: WorkerOptions) -> list[dict[str, Any]]:
    """Poll and run jobs until `once`/`max_jobs` says stop; returns {id, status} per job."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("run the worker as one process; multi-GPU runs use torchrun per stage")
    unknown = set(opts.stages) - set(STAGES)
    if unknown:
        raise ConfigError(f"unknown stage(s) {sorted(unknown)}; known: {STAGES}")
    handled: list[dict[str, Any]] = []
    with _stop_on_signals():
        for run in resumable_runs(client, opts):
            log.info("run %s died under an earlier worker: resuming it", run["id"])
            status = execute(client, run, opts, resume=True)
            if status == "busy":
                continue
            handled.append({"id": run["id"], "status": status, "resumed": True})
            if opts.once or (opts.max_jobs and len(handled) >= opts.max_jobs):
                return handled
        while True:
            heartbeat(client, opts)
            run = next_queued(client, opts.stages)
            if run is None:
                if opts.once:
                    return handled
                time.sleep(opts.poll_s)
                continue
            if not claim(client, run, opts.worker_id, _about(opts)):
                log.info("run %s was taken by another worker", run["id"])
                continue
            handled.append({"id": run["id"], "status": execute(client, run, opts)})
            if opts.once or (opts.max_jobs and len(handled) >= opts.max_jobs):
                return handled
