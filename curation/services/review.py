"""Expert review of pairs: claims (leases), decisions with optimistic locking, skips, reverts.

Two experts never hold the same pair: the picker skips rows other transactions have locked
(``FOR UPDATE SKIP LOCKED``), ignores expired claims by itself, and the unique constraint on
``Claim(item_type, item_id)`` refuses a second live claim even in a race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from curation.models import Claim, Flag, Modality, Pair, RejectReason, Review, ReviewEvent, Sex
from curation.services.audit import record_event
from curation.services.errors import Conflict, NotAllowed, ServiceError
from skinplatform.accounts.roles import ADMIN, CURATOR, EXPERT, has_any_role

ITEM = "pair"
EDITABLE = ("text", "modality", "diagnosis", "age", "sex", "flags")
SNAPSHOT = ("status", *EDITABLE, "reject_reason", "reject_note")
REVIEWERS = frozenset({EXPERT, CURATOR, ADMIN})
PAIR_MODALITIES = {m for m in Modality.values if m != Modality.MIXED}


@dataclass(frozen=True)
class QueueFilter:
    textbook_id: int | None = None
    modality: str | None = None
    status: str = Pair.Status.PROPOSED


def snapshot(pair: Pair) -> dict:
    return {field: getattr(pair, field) for field in SNAPSHOT}


def _require(user, roles: frozenset[str], what: str) -> None:
    if not has_any_role(user, roles):
        raise NotAllowed("forbidden", f"Your role does not allow you to {what}.")


def _lease() -> timedelta:
    return timedelta(minutes=settings.CLAIM_MINUTES)


def _matches(pair: Pair, filters: QueueFilter) -> bool:
    return (
        pair.status == filters.status
        and (filters.textbook_id is None or pair.textbook_id == filters.textbook_id)
        and (filters.modality is None or pair.modality == filters.modality)
    )


def claim_next(user, filters: QueueFilter | None = None) -> Pair | None:
    """The oldest pair matching ``filters`` that nobody holds, leased to ``user``.

    A user who still holds a matching pair gets it back (a reload does not lose the place).
    Pairs the user skipped are not offered to them again.
    """
    _require(user, REVIEWERS, "review")
    filters = filters or QueueFilter()
    for _ in range(5):
        with transaction.atomic():
            now = timezone.now()
            held = (
                Claim.objects.select_for_update()
                .filter(item_type=ITEM, user=user, expires_at__gt=now)
                .order_by("-created_at")
            )
            for claim in held:
                pair = Pair.objects.filter(pk=claim.item_id).first()
                if pair is not None and _matches(pair, filters):
                    claim.expires_at = now + _lease()
                    claim.renewed_at = now
                    claim.save(update_fields=["expires_at", "renewed_at"])
                    return pair
                claim.delete()
            live = Claim.objects.filter(item_type=ITEM, expires_at__gt=now).values("item_id")
            skipped = ReviewEvent.objects.filter(
                actor=user, action="pair.skipped", target_type=ITEM
            ).values("target_id")
            candidates = Pair.objects.filter(status=filters.status)
            if filters.textbook_id is not None:
                candidates = candidates.filter(textbook_id=filters.textbook_id)
            if filters.modality:
                candidates = candidates.filter(modality=filters.modality)
            pair = (
                candidates.exclude(pk__in=live)
                .exclude(pk__in=skipped)
                .order_by("id")
                .select_for_update(skip_locked=True)
                .first()
            )
            if pair is None:
                return None
            Claim.objects.filter(item_type=ITEM, item_id=pair.pk, expires_at__lte=now).delete()
            try:
                with transaction.atomic():
                    Claim.objects.create(
                        item_type=ITEM, item_id=pair.pk, user=user, expires_at=now + _lease()
                    )
            except IntegrityError:
                continue  # someone claimed it between our read and our insert: pick again
            return pair
    return None


def claim_of(pair_id: int) -> Claim | None:
    return (
        Claim.objects.filter(item_type=ITEM, item_id=pair_id, expires_at__gt=timezone.now())
        .select_related("user")
        .first()
    )


def renew_claim(user, pair_id: int) -> Claim:
    """Extend the lease while the page is open; refused when someone else holds the pair."""
    _require(user, REVIEWERS, "review")
    with transaction.atomic():
        now = timezone.now()
        claim = Claim.objects.select_for_update().filter(item_type=ITEM, item_id=pair_id).first()
        if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
            raise Conflict("claimed", f"{claim.user} is reviewing this pair.")
        if claim is None:
            claim = Claim(item_type=ITEM, item_id=pair_id, user=user)
        claim.user = user
        claim.expires_at = now + _lease()
        claim.renewed_at = now
        claim.save()
        return claim


def release_claim(user, pair_id: int) -> None:
    Claim.objects.filter(item_type=ITEM, item_id=pair_id, user=user).delete()


def expire_claims() -> int:
    """Delete expired leases (the picker ignores them anyway; this keeps the table small)."""
    deleted, _ = Claim.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def _clean(changes: dict) -> dict:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ServiceError("invalid", f"Unknown field(s): {', '.join(sorted(unknown))}.")
    clean = {}
    for field, value in changes.items():
        if field in ("text", "diagnosis"):
            if not isinstance(value, str):
                raise ServiceError("invalid", f"{field} must be text.")
            clean[field] = value.strip()
        elif field == "modality":
            if value not in PAIR_MODALITIES:
                raise ServiceError("invalid", f"modality must be one of {sorted(PAIR_MODALITIES)}.")
            clean[field] = value
        elif field == "sex":
            if value not in ("", *Sex.values):
                raise ServiceError("invalid", "sex must be female, male or empty.")
            clean[field] = value
        elif field == "age":
            if value in ("", None):
                clean[field] = None
                continue
            try:
                age = int(value)
            except (TypeError, ValueError):
                raise ServiceError("invalid", "age must be a whole number of years.") from None
            if not 0 <= age <= 120:
                raise ServiceError("invalid", "age must be between 0 and 120.")
            clean[field] = age
        elif field == "flags":
            if not isinstance(value, list | tuple) or set(value) - set(Flag.values):
                raise ServiceError("invalid", f"flags must be a subset of {Flag.values}.")
            clean[field] = sorted(set(value))
    return clean


def _lock_for_write(pair_id: int, user, version: int) -> tuple[Pair, Claim | None]:
    pair = Pair.objects.select_for_update().filter(pk=pair_id).first()
    if pair is None:
        raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
    claim = claim_of(pair_id)
    if claim is not None and claim.user_id != user.pk:
        raise Conflict("claimed", f"{claim.user} is reviewing this pair now.")
    if pair.version != version:
        since = list(
            ReviewEvent.objects.filter(target_type=ITEM, target_id=pair.pk)
            .order_by("-created_at", "-id")
            .values("action", "actor__username", "before", "after", "created_at")[:5]
        )
        raise Conflict(
            "stale",
            "Someone changed this pair after you opened it. Review their change, then reapply "
            "yours or discard it.",
            extra={
                "version": pair.version,
                "current": snapshot(pair),
                "recent": [{**e, "created_at": e["created_at"].isoformat()} for e in since],
            },
        )
    return pair, claim


def _decision_status(pair: Pair) -> str:
    """Accepted when the expert kept the machine's proposal, edited when any value differs."""
    proposal = pair.proposed or {}
    for field in EDITABLE:
        proposed = proposal.get(field)
        if field == "flags":
            proposed = sorted(set(proposed or []))
        if field == "sex":
            proposed = proposed or ""
        if field == "diagnosis":
            proposed = proposed or ""
        if getattr(pair, field) != proposed:
            return Pair.Status.EDITED
    return Pair.Status.ACCEPTED


def review_pair(
    pair_id: int,
    user,
    *,
    version: int,
    action: str,
    changes: dict | None = None,
    reason: str = "",
    note: str = "",
) -> Pair:
    """Record an expert's decision: ``accept`` (as shown, with any edits) or ``reject``."""
    _require(user, REVIEWERS, "review")
    if action not in ("accept", "reject"):
        raise ServiceError("invalid", "action must be accept or reject.")
    clean = _clean(changes or {})
    if action == "reject":
        if reason not in RejectReason.values:
            raise ServiceError("invalid", "Choose a reason for rejecting.")
        if reason == RejectReason.OTHER and not note.strip():
            raise ServiceError("invalid", "Explain the reason when it is 'other'.")
    with transaction.atomic():
        pair, claim = _lock_for_write(pair_id, user, version)
        before = snapshot(pair)
        for field, value in clean.items():
            setattr(pair, field, value)
        if action == "reject":
            pair.status = Pair.Status.REJECTED
            pair.reject_reason, pair.reject_note = reason, note.strip()
        else:
            if not pair.text:
                raise ServiceError("invalid", "An accepted pair needs its caption text.")
            pair.status = _decision_status(pair)
            pair.reject_reason, pair.reject_note = "", ""
        now = timezone.now()
        pair.version += 1
        pair.reviewed_by, pair.reviewed_at = user, now
        pair.save()
        seconds = (now - claim.created_at).total_seconds() if claim else None
        Review.objects.create(
            item_type=ITEM,
            item_id=pair.pk,
            textbook_id=pair.textbook_id,
            expert=user,
            decision=pair.status,
            modality=pair.modality,
            seconds=seconds,
        )
        record_event(user, pair, f"pair.{pair.status}", before=before, after=snapshot(pair))
        Claim.objects.filter(item_type=ITEM, item_id=pair.pk).delete()
    return pair


def skip_pair(pair_id: int, user) -> None:
    """Leave the pair for someone else; it is not offered to this expert again."""
    _require(user, REVIEWERS, "review")
    with transaction.atomic():
        pair = Pair.objects.filter(pk=pair_id).first()
        if pair is None:
            raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
        release_claim(user, pair_id)
        record_event(user, pair, "pair.skipped")


def revert_pair(pair_id: int, user, *, event_id: int, version: int) -> Pair:
    """Return the pair to its state right after ``event_id``. The revert is itself an event."""
    _require(user, frozenset({CURATOR, ADMIN}), "revert reviews")
    event = ReviewEvent.objects.filter(pk=event_id, target_type=ITEM, target_id=pair_id).first()
    if event is None or not event.after:
        raise ServiceError("invalid", "That event does not belong to this pair or has no state.")
    with transaction.atomic():
        pair, _ = _lock_for_write(pair_id, user, version)
        before = snapshot(pair)
        state = {"status": Pair.Status.PROPOSED, "reject_reason": "", "reject_note": ""}
        state.update({k: v for k, v in event.after.items() if k in SNAPSHOT})
        for field, value in state.items():
            setattr(pair, field, value)
        pair.version += 1
        pair.save()
        record_event(
            user, pair, "pair.reverted", before=before, after=snapshot(pair),
            note=f"to the state after event {event.pk} ({event.action})",
        )  # fmt: skip
    return pair


def history(pair_id: int) -> list[ReviewEvent]:
    return list(
        ReviewEvent.objects.filter(target_type=ITEM, target_id=pair_id)
        .select_related("actor")
        .order_by("created_at", "id")
    )
