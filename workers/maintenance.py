"""Periodic housekeeping (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from curation.services import review as review_service
from curation.services.ingest_recovery import resume_stalled_ingests as _resume


@shared_task(name="workers.maintenance.expire_claims")
def expire_claims() -> int:
    """Drop expired review leases. The picker already ignores them; this keeps the table lean."""
    return review_service.expire_claims()


@shared_task(name="workers.maintenance.resume_stalled_ingests")
def resume_stalled_ingests() -> int:
    """Re-send ingest work of killed workers, lost messages and broker outages
    (see curation.services.ingest_recovery); beat runs it every INGEST_SWEEP_SECONDS."""
    return _resume()
