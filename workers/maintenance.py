"""Periodic housekeeping (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from curation.services import review as review_service


@shared_task(name="workers.maintenance.expire_claims")
def expire_claims() -> int:
    """Drop expired review leases. The picker already ignores them; this keeps the table lean."""
    return review_service.expire_claims()
