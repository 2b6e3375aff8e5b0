"""Which GPU workers are there: read from their last poll and from the runs they hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from curation.models import TrainingRun, WorkerHeartbeat

# A worker that has not polled for this long (or three of its own poll intervals, if longer)
# is not counted as connected. `python -m ml worker` polls every 30 s by default.
STALE_AFTER_S = 300
# Workers last seen longer ago than this are not listed at all.
LISTED_FOR = timedelta(days=1)


def ago(seconds: float) -> str:
    """ "12 s ago", "4 min ago", "3 h ago", "2 d ago"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@dataclass(frozen=True)
class WorkerStatus:
    worker: str
    account: str
    hostname: str
    stages: list[str]
    last_seen: datetime
    seconds_ago: float
    connected: bool  # polled within its window
    running_run: int | None  # the run it holds, if any

    @property
    def last_seen_ago(self) -> str:
        return ago(self.seconds_ago)


@dataclass(frozen=True)
class WorkersSummary:
    workers: list[WorkerStatus]
    stale_after_s: int

    @property
    def idle(self) -> list[WorkerStatus]:
        return [w for w in self.workers if w.connected and w.running_run is None]

    @property
    def busy(self) -> list[WorkerStatus]:
        return [w for w in self.workers if w.running_run is not None]

    @property
    def any_connected(self) -> bool:
        return any(w.connected for w in self.workers)

    @property
    def stale_after_min(self) -> int:
        return self.stale_after_s // 60


def workers(now: datetime | None = None) -> WorkersSummary:
    """Workers seen in the last day, newest first, each with whether it is still connected.

    A worker busy with a run does not poll; it counts as busy (holding that run) rather than
    gone, and the run's own `updated_at` on the page tells whether it still reports.
    """
    now = now or timezone.now()
    holding = {
        run["metrics"].get("worker"): run["pk"]
        for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).values(
            "pk", "metrics"
        )
        if isinstance(run["metrics"], dict)
    }
    rows = WorkerHeartbeat.objects.select_related("user").filter(last_seen__gte=now - LISTED_FOR)
    out = []
    for beat in rows[:50]:
        seconds = (now - beat.last_seen).total_seconds()
        window = max(STALE_AFTER_S, 3 * (beat.poll_s or 0))
        out.append(
            WorkerStatus(
                worker=beat.worker,
                account=beat.user.get_username(),
                hostname=beat.hostname,
                stages=list(beat.stages or []),
                last_seen=beat.last_seen,
                seconds_ago=seconds,
                connected=seconds <= window,
                running_run=holding.get(beat.worker),
            )
        )
    return WorkersSummary(workers=out, stale_after_s=STALE_AFTER_S)
