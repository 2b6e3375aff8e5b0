"""Settings of a release worker that stops at a kill point and waits there to be SIGKILLed.

Tests only. A real worker runs the real build; these settings only make *where* it dies
deterministic, so a test can look at what is visible at that moment and then kill it.
``RELEASE_KILL_POINT`` names the point:

- ``writing``: the canonical files are half written (after ``RELEASE_KILL_AFTER_PAIRS``
  pairs);
- ``publishing``: inside the publishing transaction, after the finished folder was renamed
  into place and the row updated, before the commit.

There the worker writes its pid to ``RELEASE_KILL_GATE`` (a file path) and sleeps.
"""

import os
import time
from pathlib import Path

from celery.signals import task_prerun

from tests.settings import *  # noqa: F403

KILL_POINT = os.environ["RELEASE_KILL_POINT"]
KILL_GATE = Path(os.environ["RELEASE_KILL_GATE"])
KILL_AFTER_PAIRS = int(os.environ.get("RELEASE_KILL_AFTER_PAIRS", "5"))
_WAIT_S = 300


def _stop_here(where: str) -> None:
    partial = KILL_GATE.with_suffix(".part")
    partial.write_text(f"{os.getpid()} {where}\n")
    os.replace(partial, KILL_GATE)
    time.sleep(_WAIT_S)
    raise RuntimeError(f"kill point {where}: nobody killed this worker")


@task_prerun.connect
def _install_kill_point(**_kwargs) -> None:
    """Runs in the pool process, where Django is set up, before the build task."""
    from curation.release import writer
    from curation.services import releases

    if getattr(releases, "_kill_point", None):
        return
    releases._kill_point = KILL_POINT
    if KILL_POINT == "writing":
        real_add = writer.ReleaseWriter.add

        def add(self, pair, split):
            fingerprint = real_add(self, pair, split)
            if self.counts.pairs == KILL_AFTER_PAIRS:
                _stop_here(f"writing, after {KILL_AFTER_PAIRS} pairs")
            return fingerprint

        writer.ReleaseWriter.add = add
    elif KILL_POINT == "publishing":
        real_record = releases.record_event

        def record_event(user, target, action, **kwargs):
            event = real_record(user, target, action, **kwargs)
            if action == "release.built":
                _stop_here("publishing, before the commit")
            return event

        releases.record_event = record_event
    else:
        raise ValueError(f"unknown RELEASE_KILL_POINT {KILL_POINT!r}")
