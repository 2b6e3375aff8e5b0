"""Release tasks on the ``release`` queue: build one attempt of one release.

The task carries the attempt's token. A redelivered task (its worker was killed) finds its
own token still current and starts the attempt again from an empty folder; a task of an
attempt that was superseded or already finished does nothing.
"""

from __future__ import annotations

from celery import shared_task

from curation.services import releases as release_service

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}  # queue: CELERY_TASK_ROUTES


@shared_task(name="workers.release.build_release", **TASK_OPTIONS)
def build_release(release_id: int, token: str) -> bool:
    return release_service.run_build(release_id, token)
