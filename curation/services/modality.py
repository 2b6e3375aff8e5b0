"""The modality classifier learns from the experts: every reviewed pair whose modality an
expert accepted or set is a labelled example. Retraining fits a candidate on the shipped
training features plus those examples, scores it and the model in use on a held-out slice of
the examples (whole figures, never seen in training), and promotes it only when it is better.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from curation.events import EventAction
from curation.extract.modality import features as feats
from curation.extract.modality import model as modality_model
from curation.extract.modality import train
from curation.models import ModalityClassifier, Pair
from curation.services import dispatch
from curation.services.audit import record_event
from curation.services.errors import ServiceError

log = logging.getLogger(__name__)

REGISTERED = EventAction.MODALITY_MODEL_REGISTERED
RETRAIN_REQUESTED = EventAction.MODALITY_MODEL_RETRAIN_REQUESTED
PROMOTED = EventAction.MODALITY_MODEL_PROMOTED
REJECTED = EventAction.MODALITY_MODEL_REJECTED
SKIPPED = EventAction.MODALITY_MODEL_SKIPPED
RETIRED_UNUSABLE = EventAction.MODALITY_MODEL_RETIRED_UNUSABLE
CLASSES = tuple(train.CLASSES)
LABELLED = (Pair.Status.ACCEPTED, Pair.Status.EDITED)


@dataclass(frozen=True)
class RetrainResult:
    outcome: str  # "promoted", "rejected" or "skipped"
    reason: str
    version: str = ""
    candidate_accuracy: float | None = None
    incumbent_accuracy: float | None = None
    trained_examples: int = 0
    heldout_examples: int = 0


def in_heldout_slice(figure_id: int) -> bool:
    """Whole figures go to the held-out slice, so no panel of it trains the candidate."""
    return figure_id % settings.MODALITY_HELDOUT_EVERY == 0


def ensure_registered() -> ModalityClassifier:
    """The promoted classifier row, registering the shipped model when there is none."""
    current = ModalityClassifier.objects.filter(status=ModalityClassifier.Status.PROMOTED).first()
    if current is not None:
        return current
    shipped = modality_model.shipped()
    with transaction.atomic():
        row, created = ModalityClassifier.objects.get_or_create(
            version=shipped.version,
            defaults={
                "params": shipped.to_dict(),
                "status": ModalityClassifier.Status.PROMOTED,
                "shipped": True,
                "promoted_at": timezone.now(),
            },
        )
        if created:
            record_event(None, row, REGISTERED, after={"version": row.version, "shipped": True})
        elif row.status != ModalityClassifier.Status.PROMOTED:
            # The shipped model was replaced once and then every successor went: none is in
            # use, so the shipped one is again.
            row = ModalityClassifier.objects.select_for_update().get(pk=row.pk)
            before = {"status": row.status}
            row.status, row.promoted_at = ModalityClassifier.Status.PROMOTED, timezone.now()
            row.save(update_fields=["status", "promoted_at"])
            record_event(None, row, PROMOTED, before=before, after={"status": row.status})
    return row


def active_model() -> modality_model.ModalityModel:
    """The promoted model, as the extractor runs it (loaded once per version and process).

    A promoted model this code cannot run (trained on the features of an older release) is
    retired and the shipped one takes over, rather than failing every ingest."""
    row = ensure_registered()
    try:
        return _load(row.version, row.params)
    except modality_model.ModelFormatError as exc:
        log.warning("modality model %s cannot run here (%s): back to the shipped one", row, exc)
        return _load(*_fall_back_to_shipped(row, str(exc)))


def _fall_back_to_shipped(stale: ModalityClassifier, why: str) -> tuple[str, dict]:
    with transaction.atomic():
        stale = ModalityClassifier.objects.select_for_update().get(pk=stale.pk)
        if stale.status == ModalityClassifier.Status.PROMOTED:
            stale.status = ModalityClassifier.Status.RETIRED
            stale.save(update_fields=["status"])
            record_event(None, stale, RETIRED_UNUSABLE, before={"status": "promoted"},
                         after={"status": stale.status}, note=why)  # fmt: skip
    row = ensure_registered()
    return row.version, row.params


_cache: dict[str, modality_model.ModalityModel] = {}


def _load(version: str, params: dict) -> modality_model.ModalityModel:
    if version not in _cache:
        _cache.clear()
        _cache[version] = modality_model.ModalityModel.from_dict(params)
    return _cache[version]


def activate_for_extraction() -> str:
    """Make the promoted model the one this worker process suggests with; its version."""
    m = active_model()
    modality_model.use(m)
    return m.version


def request_retrain(actor) -> None:
    """A curator asks for a retraining now; the task runs it on a worker."""
    if actor is None or not actor.is_authenticated:
        raise ServiceError("forbidden", "only a signed-in curator can ask for a retraining.")
    row = ensure_registered()
    record_event(actor, row, RETRAIN_REQUESTED, after={"incumbent": row.version})
    dispatch.enqueue_modality_retrain(actor.pk)


def expert_examples() -> list[tuple[int, int, str, str]]:
    """(pair id, figure id, crop path, expert modality) of every reviewed pair whose modality
    an expert accepted or set."""
    rows = (
        Pair.objects.filter(status__in=LABELLED, reviewed_by__isnull=False, modality__in=CLASSES)
        .order_by("id")
        .values_list("id", "panel__figure_id", "panel__image", "modality")
    )
    return list(rows)


def _features(path: str) -> np.ndarray | None:
    try:
        with default_storage.open(path, "rb") as fh:
            return feats.features(fh.read())
    except Exception as exc:  # a crop missing or unreadable is one example fewer, not a crash
        log.warning("modality retraining: crop %s unreadable: %s", path, exc)
        return None


def _accuracy(m: modality_model.ModalityModel, x: np.ndarray, y: list[str]) -> float:
    """Share of the slice the model names right; an ``unknown`` answer is not right."""
    p = m.proba(x)
    said = [
        m.classes[k] if p[i, k] >= m.threshold else modality_model.UNKNOWN
        for i, k in enumerate(p.argmax(axis=1))
    ]
    return float(np.mean([s == t for s, t in zip(said, y, strict=True)]))


def retrain(actor=None) -> RetrainResult:
    """Fit a candidate on the expert decisions, evaluate it against the model in use on the
    held-out slice, and promote it only when it is strictly better there."""
    examples = expert_examples()
    train_rows: list[tuple[np.ndarray, str, str]] = []
    held_rows: list[tuple[np.ndarray, str]] = []
    for _pair_id, figure_id, path, label in examples:
        x = _features(path)
        if x is None:
            continue
        if in_heldout_slice(figure_id):
            held_rows.append((x, label))
        else:
            train_rows.append((x, label, f"figure:{figure_id}"))
    incumbent_row = ensure_registered()
    need = settings.MODALITY_RETRAIN_MIN_HELDOUT
    if len(held_rows) < need or not train_rows:
        reason = (
            f"{len(held_rows)} held-out and {len(train_rows)} training examples; "
            f"at least {need} held-out and one training example are needed"
        )
        record_event(actor, incumbent_row, SKIPPED, note=reason)
        return RetrainResult("skipped", reason, "", None, None, len(train_rows), len(held_rows))
    bx, by, bg = train.base_examples()
    x_train = np.vstack([bx, np.asarray([r[0] for r in train_rows])])
    y_train = by + [r[1] for r in train_rows]
    g_train = bg + [r[2] for r in train_rows]
    candidate = train.fit(x_train, y_train, g_train)
    x_held = np.asarray([r[0] for r in held_rows])
    y_held = [r[1] for r in held_rows]
    cand_acc = _accuracy(candidate, x_held, y_held)
    with transaction.atomic():
        incumbent_row = ModalityClassifier.objects.select_for_update().get(
            pk=ensure_registered().pk
        )
        incumbent = _load(incumbent_row.version, incumbent_row.params)
        inc_acc = _accuracy(incumbent, x_held, y_held)
        better = cand_acc > inc_acc
        candidate.metrics = {"heldout_accuracy": round(cand_acc, 4), "examples": len(y_train)}
        after = {
            "version": candidate.version,
            "candidate_accuracy": round(cand_acc, 4),
            "incumbent": incumbent_row.version,
            "incumbent_accuracy": round(inc_acc, 4),
            "trained_examples": len(train_rows),
            "heldout_examples": len(held_rows),
        }
        if better:  # one promoted row at a time (a unique constraint): retire first
            incumbent_row.status = ModalityClassifier.Status.RETIRED
            incumbent_row.save(update_fields=["status"])
        row = ModalityClassifier.objects.create(
            version=candidate.version,
            params=candidate.to_dict(),
            status=ModalityClassifier.Status.PROMOTED
            if better
            else ModalityClassifier.Status.REJECTED,
            trained_examples=len(train_rows),
            heldout_examples=len(held_rows),
            heldout_accuracy=round(cand_acc, 4),
            incumbent=incumbent_row,
            incumbent_accuracy=round(inc_acc, 4),
            created_by=actor if actor is not None and actor.is_authenticated else None,
            promoted_at=timezone.now() if better else None,
        )
        if better:
            record_event(
                actor, row, PROMOTED, before={"version": incumbent_row.version}, after=after
            )
            outcome, reason = "promoted", "better than the model in use on the held-out slice"
        else:
            record_event(actor, row, REJECTED, after=after)
            outcome, reason = "rejected", "not better than the model in use on the held-out slice"
    return RetrainResult(
        outcome,
        reason,
        candidate.version,
        round(cand_acc, 4),
        round(inc_acc, 4),
        len(train_rows),
        len(held_rows),
    )
