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


@shared_task(name="workers.maintenance.retrain_modality")
def retrain_modality(actor_id: int | None = None) -> str:
    """Retrain the modality classifier from expert decisions; promote it only if better.
    Beat runs it every MODALITY_RETRAIN_SECONDS; a curator's button sends it too."""
    from django.contrib.auth import get_user_model

    from curation.services import modality

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    return modality.retrain(actor).outcome
