"""Expert review of pairs: claims (leases), decisions with optimistic locking, skips, reverts.

Two experts never hold the same pair: the picker skips rows other transactions have locked
(``FOR UPDATE SKIP LOCKED``), ignores expired claims by itself, and the unique constraint on
``Claim(item_type, item_id)`` refuses a second live claim even in a race.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from curation import limits
from curation.agreement import accept_class
from curation.events import EventAction
from curation.models import (
    Claim,
    Flag,
    Modality,
    Pair,
    Panel,
    ProjectSettings,
    RejectReason,
    Review,
    ReviewEvent,
    Sex,
)
from curation.selectors.panels import REVERTED
from curation.selectors.review import round_reviews, visible_events
from curation.services import agreement_counts, dispatch
from curation.services import drafting as drafting_service
from curation.services.audit import record_event
from curation.services.errors import Conflict, ServiceError
from curation.services.roles import require_role
from skinplatform.accounts.roles import REVIEWERS, STAFF

ITEM = "pair"
EDITABLE = ("text", "modality", "diagnosis", "age", "sex", "flags")
SNAPSHOT = ("status", *EDITABLE, "reject_reason", "reject_note")
PAIR_MODALITIES = {m for m in Modality.values if m != Modality.MIXED}
DECIDED = (Pair.Status.ACCEPTED, Pair.Status.EDITED, Pair.Status.REJECTED)

# Short names for the review's event kinds (all of them are declared in ``curation.events``);
# a final decision is ``decision_event(status)``.
SKIPPED = EventAction.PAIR_SKIPPED
REVIEWED = EventAction.PAIR_REVIEWED
DISPUTED = EventAction.PAIR_DISPUTED
OVERRIDDEN = EventAction.PAIR_OVERRIDDEN
UNDONE = EventAction.PAIR_UNDONE
# What ``undo_decision`` may take back: the events ``review_pair`` records.
UNDOABLE = frozenset({REVIEWED, DISPUTED, OVERRIDDEN, *(EventAction(f"pair.{s}") for s in DECIDED)})
ORDERS = ("id", "doubtful")  # queue order: oldest first, or the extractor's doubtful first


def decision_event(status: str) -> EventAction:
    """``pair.accepted``, ``pair.edited`` or ``pair.rejected``."""
    return EventAction(f"pair.{status}")


@dataclass(frozen=True)
class QueueFilter:
    textbook_id: int | None = None
    modality: str | None = None
    status: str = Pair.Status.PROPOSED
    flag: str | None = None  # pairs carrying this review flag
    doubtful: bool = False  # only pairs the extractor doubts (see ``is_doubtful``)
    order: str = "id"  # one of ``ORDERS``


def doubtful_q() -> Q:
    """Pairs the extractor doubts: confidence below ``REVIEW_DOUBTFUL_BELOW``, or any doubt."""
    return Q(extract_confidence__lt=settings.REVIEW_DOUBTFUL_BELOW) | ~Q(extract_doubts=[])


def is_doubtful(pair: Pair) -> bool:
    """``doubtful_q`` for one row in memory."""
    low = (
        pair.extract_confidence is not None
        and pair.extract_confidence < settings.REVIEW_DOUBTFUL_BELOW
    )
    return low or bool(pair.extract_doubts)


def filter_pairs(pairs: QuerySet[Pair], filters: QueueFilter) -> QuerySet[Pair]:
    """``pairs`` narrowed to the queue filter's book, modality, flag and doubt (not status)."""
    if filters.textbook_id is not None:
        pairs = pairs.filter(textbook_id=filters.textbook_id)
    if filters.modality:
        pairs = pairs.filter(modality=filters.modality)
    if filters.flag:
        # A JSON list of fixed words: its text holds '"face"' exactly when it holds "face"
        # (SQLite has no JSON containment lookup).
        pairs = pairs.alias(flags_text=Cast("flags", TextField())).filter(
            flags_text__contains=json.dumps(filters.flag)
        )
    if filters.doubtful:
        pairs = pairs.filter(doubtful_q())
    return pairs


def queue(filters: QueueFilter) -> QuerySet[Pair]:
    """The pairs of the queue ``filters`` describes, in the order the picker offers them."""
    return _ordered(filter_pairs(Pair.objects.filter(status=filters.status), filters), filters)


def _ordered(pairs: QuerySet[Pair], filters: QueueFilter) -> QuerySet[Pair]:
    if filters.order != "doubtful":
        return pairs.order_by("id")
    return pairs.alias(
        doubt_rank=Case(When(doubtful_q(), then=Value(0)), default=Value(1),
                        output_field=IntegerField()),
        confidence_or_one=Coalesce(F("extract_confidence"), Value(1.0)),
    ).order_by("doubt_rank", "confidence_or_one", "id")  # fmt: skip


def snapshot(pair: Pair) -> dict:
    return {field: getattr(pair, field) for field in SNAPSHOT}


def _lease() -> timedelta:
    return timedelta(minutes=settings.CLAIM_MINUTES)


def _matches(pair: Pair, filters: QueueFilter) -> bool:
    return (
        pair.status == filters.status
        and (filters.textbook_id is None or pair.textbook_id == filters.textbook_id)
        and (filters.modality is None or pair.modality == filters.modality)
        and (filters.flag is None or filters.flag in (pair.flags or []))
        and (not filters.doubtful or is_doubtful(pair))
    )


def claim_next(user, filters: QueueFilter | None = None) -> Pair | None:
    """The oldest pair matching ``filters`` that nobody holds, leased to ``user``.

    A user who still holds a matching pair gets it back (a reload does not lose the place).
    Pairs the user skipped are not offered to them again.
    """
    pair_id = claim_next_id(user, filters)
    return None if pair_id is None else Pair.objects.filter(pk=pair_id).first()


def claim_next_id(user, filters: QueueFilter | None = None) -> int | None:
    """``claim_next`` for callers that only need the id (the HTML view redirects to it)."""
    require_role(user, REVIEWERS, "review")
    filters = filters or QueueFilter()
    if filters.status == Pair.Status.DISPUTED:
        require_role(user, STAFF, "adjudicate")
    now = timezone.now()
    # One cheap read in the common case: after a decision the expert holds nothing.
    if Claim.objects.filter(item_type=ITEM, user=user, expires_at__gt=now).exists():
        held = _renew_held(user, filters)
        if held is not None:
            return held
    pick = _pick_and_claim_pg if connection.vendor == "postgresql" else _pick_and_claim_orm
    for _ in range(5):
        picked, claimed = pick(user, filters, timezone.now())
        if picked is None:
            return None
        if claimed is not None:
            return claimed
        # Someone claimed it between our read and our insert: pick again.
    return None


def _renew_held(user, filters: QueueFilter) -> int | None:
    """Renew the newest live claim of ``user`` that matches ``filters``; drop the others."""
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
                return pair.pk
            claim.delete()
    return None


_PICK_SQL = """
WITH pick AS MATERIALIZED (
    SELECT p.id FROM {pair} p
    WHERE p.status = %(status)s{filters}
      AND NOT EXISTS (SELECT 1 FROM {claim} c WHERE c.item_type = %(item)s
                      AND c.item_id = p.id AND c.expires_at > %(now)s)
      AND NOT EXISTS (SELECT 1 FROM {event} e WHERE e.target_type = %(item)s
                      AND e.target_id = p.id AND e.actor_id = %(user)s
                      AND e.action = %(skipped)s){mine}
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF p SKIP LOCKED
), claimed AS (
    INSERT INTO {claim} (item_type, item_id, user_id, expires_at, renewed_at, created_at)
    SELECT %(item)s, id, %(user)s, %(expires)s, NULL, %(now)s FROM pick
    ON CONFLICT (item_type, item_id) DO UPDATE
        SET user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at,
            renewed_at = NULL, created_at = EXCLUDED.created_at
        WHERE {claim}.expires_at <= %(now)s
    RETURNING item_id
)
SELECT (SELECT id FROM pick), (SELECT item_id FROM claimed)
"""
_MINE_SQL = """
      AND NOT EXISTS (SELECT 1 FROM {review} r WHERE r.item_type = %(item)s
                      AND r.item_id = p.id AND r.expert_id = %(user)s AND NOT r.adjudication)"""


def _pick_and_claim_pg(user, filters: QueueFilter, now) -> tuple[int | None, int | None]:
    """Pick and lease in one statement: ``(picked id, claimed id)``; claimed None on a race.

    The oldest matching pair nobody holds is locked with ``FOR UPDATE SKIP LOCKED`` and its
    claim inserted (or an expired claim on it taken over) by the same statement, so a pick
    costs one round trip and no explicit transaction.
    """
    params = {
        "status": filters.status,
        "item": ITEM,
        "skipped": SKIPPED.value,
        "user": user.pk,
        "now": now,
        "expires": now + _lease(),
    }
    where = ""
    if filters.textbook_id is not None:
        where += " AND p.textbook_id = %(book)s"
        params["book"] = filters.textbook_id
    if filters.modality:
        where += " AND p.modality = %(modality)s"
        params["modality"] = filters.modality
    if filters.flag:
        where += " AND p.flags @> %(flag)s::jsonb"
        params["flag"] = json.dumps([filters.flag])
    doubtful = "(p.extract_confidence < %(below)s OR p.extract_doubts <> '[]'::jsonb)"
    params["below"] = settings.REVIEW_DOUBTFUL_BELOW
    if filters.doubtful:
        where += f" AND {doubtful}"
    order = "p.id"
    if filters.order == "doubtful":
        order = f"CASE WHEN {doubtful} THEN 0 ELSE 1 END, COALESCE(p.extract_confidence, 1.0), p.id"
    # With several reviews per item, each goes to a different expert.
    mine = _MINE_SQL if filters.status == Pair.Status.PROPOSED else ""
    tables = {
        "pair": Pair._meta.db_table,
        "claim": Claim._meta.db_table,
        "event": ReviewEvent._meta.db_table,
        "review": Review._meta.db_table,
    }
    sql = _PICK_SQL.format(filters=where, mine=mine.format(**tables), order=order, **tables)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _pick_and_claim_orm(user, filters: QueueFilter, now) -> tuple[int | None, int | None]:
    """The same as ``_pick_and_claim_pg`` with the ORM, for SQLite (the embedded demo)."""
    with transaction.atomic():
        live = Claim.objects.filter(item_type=ITEM, expires_at__gt=now).values("item_id")
        skipped = ReviewEvent.objects.filter(actor=user, action=SKIPPED, target_type=ITEM).values(
            "target_id"
        )
        candidates = Pair.objects.filter(status=filters.status)
        if filters.status == Pair.Status.PROPOSED:
            mine = Review.objects.filter(expert=user, item_type=ITEM, adjudication=False).values(
                "item_id"
            )
            candidates = candidates.exclude(pk__in=mine)
        candidates = _ordered(filter_pairs(candidates, filters), filters)
        pair_id = (
            candidates.exclude(pk__in=live)
            .exclude(pk__in=skipped)
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)
            .first()
        )
        if pair_id is None:
            return None, None
        Claim.objects.filter(item_type=ITEM, item_id=pair_id, expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                Claim.objects.create(
                    item_type=ITEM, item_id=pair_id, user=user, expires_at=now + _lease()
                )
        except IntegrityError:
            return pair_id, None
        return pair_id, pair_id


def claim_of(pair_id: int) -> Claim | None:
    return (
        Claim.objects.filter(item_type=ITEM, item_id=pair_id, expires_at__gt=timezone.now())
        .select_related("user")
        .first()
    )


def renew_claim(user, pair_id: int) -> Claim:
    """Extend the lease of the page that claimed the pair (through ``claim_next``).

    Never creates a claim: a page opened by its URL (history, dashboard, "previous") holds
    nothing, so browsing cannot lock a pair away from the experts. The lease of its own page
    is extended even when it lapsed, as long as nobody took the pair meanwhile.
    """
    require_role(user, REVIEWERS, "review")
    with transaction.atomic():
        now = timezone.now()
        claim = Claim.objects.select_for_update().filter(item_type=ITEM, item_id=pair_id).first()
        if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
            raise Conflict("claimed", f"{claim.user} is reviewing this pair.")
        if claim is None or claim.user_id != user.pk:
            raise Conflict(
                "not_claimed",
                "You do not hold this pair; Review / next gives you one to hold.",
            )
        claim.expires_at = now + _lease()
        claim.renewed_at = now
        claim.save(update_fields=["expires_at", "renewed_at"])
        return claim


def release_claim(user, pair_id: int) -> None:
    Claim.objects.filter(item_type=ITEM, item_id=pair_id, user=user).delete()


def expire_claims() -> int:
    """Delete expired leases (the picker ignores them anyway; this keeps the table small)."""
    deleted, _ = Claim.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


_TEXT_LIMITS = {"text": (limits.CAPTION, "caption"), "diagnosis": (limits.DIAGNOSIS, "diagnosis")}


def _clean(changes: dict) -> dict:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ServiceError("invalid", f"Unknown field(s): {', '.join(sorted(unknown))}.")
    clean = {}
    for field, value in changes.items():
        if field in ("text", "diagnosis"):
            if not isinstance(value, str):
                raise ServiceError("invalid", f"{field} must be text.")
            clean[field] = limits.check_text(field, normal(field, value), *_TEXT_LIMITS[field])
        elif field == "modality":
            if value not in PAIR_MODALITIES:
                raise ServiceError("invalid", f"modality must be one of {sorted(PAIR_MODALITIES)}.")
            clean[field] = value
        elif field == "sex":
            if value not in ("", None, *Sex.values):
                raise ServiceError("invalid", "sex must be female, male or empty.")
            clean[field] = normal(field, value)
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
            clean[field] = normal(field, value)
    return clean


def clean_changes(changes: dict) -> dict:
    """Validated changes as the service compares them (for pages that show them back)."""
    return _clean(changes)


def normal(field: str, value):
    """A field's value as decisions compare it, so that how a form or client spells "the
    same" never counts as a change: a browser posts a textarea with CRLF line ends, a form
    posts "" for no age/sex/diagnosis, flags come in any order."""
    if field in ("text", "diagnosis"):
        return (value or "").replace("\r\n", "\n").strip()
    if field == "sex":
        return value or None
    if field == "flags":
        return sorted(set(value or []))
    return value


_LOCK_SQL = """
SELECT p.*, c.user_id AS claim_user_id, c.created_at AS claim_created_at,
       (SELECT s.reviews_per_item FROM {settings} s WHERE s.id = 1) AS reviews_needed
FROM {pair} p
LEFT JOIN {claim} c ON c.item_type = %s AND c.item_id = p.id AND c.expires_at > %s
WHERE p.id = %s
FOR UPDATE OF p
"""


def _lock_for_write(pair_id: int, user, version: int) -> tuple[Pair, Claim | None]:
    """Lock the pair, check who holds it and its version; one query when all is well.

    The live claim and the project's reviews-per-item ride along with the locking read
    (``pair.reviews_needed``), so a decision does not pay a round trip for each. No claim is
    needed to write: the row lock is the write's lease, and while it is held nobody can claim
    the pair (the picker skips locked rows), so a pair opened by its URL that nobody holds can
    be decided without a separate "claim" step.
    """
    now = timezone.now()
    if connection.vendor == "postgresql":  # plain SQL: a third of the ORM's cost here
        sql = _LOCK_SQL.format(
            settings=ProjectSettings._meta.db_table,
            pair=Pair._meta.db_table,
            claim=Claim._meta.db_table,
        )
        pair = next(iter(Pair.objects.raw(sql, [ITEM, now, pair_id])), None)
    else:
        live = Claim.objects.filter(item_type=ITEM, item_id=OuterRef("pk"), expires_at__gt=now)
        pair = (
            Pair.objects.select_for_update()
            .filter(pk=pair_id)
            .annotate(
                claim_user_id=Subquery(live.values("user_id")[:1]),
                claim_created_at=Subquery(live.values("created_at")[:1]),
                reviews_needed=Subquery(
                    ProjectSettings.objects.filter(pk=1).values("reviews_per_item")[:1]
                ),
            )
            .first()
        )
    if pair is None:
        raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
    claim = None
    if pair.claim_user_id is not None:
        claim = Claim(
            item_type=ITEM,
            item_id=pair.pk,
            user_id=pair.claim_user_id,
            created_at=pair.claim_created_at,
        )
    if claim is not None and claim.user_id != user.pk:
        raise Conflict("claimed", f"{claim.user} is reviewing this pair now.")
    if pair.version != version:
        raise Conflict(
            "stale",
            "Someone changed this pair after you opened it. Review their change, then reapply "
            "yours or discard it.",
            extra=_conflict_extra(pair, user),
        )
    return pair, claim


def decided_by(pair: Pair) -> dict | None:
    """Who made the decision in force, and when; None while the pair is undecided."""
    if pair.status not in DECIDED:
        return None
    who = pair.reviewed_by.username if pair.reviewed_by_id else None
    return {
        "by": who,
        "by_name": _name(pair.reviewed_by) if pair.reviewed_by_id else None,
        "by_id": pair.reviewed_by_id,
        "at": pair.reviewed_at.isoformat() if pair.reviewed_at else None,
        "status": pair.status,
    }


def _conflict_extra(pair: Pair, user) -> dict:
    """What a refused writer needs to decide again: the stored state, its version, who
    decided it and the latest events (blind review: only those ``user`` may see)."""
    since = list(
        visible_events(pair, user)
        .order_by("-created_at", "-id")
        .values(
            "action",
            "actor__username",
            "actor__first_name",
            "actor__last_name",
            "before",
            "after",
            "created_at",
        )[:5]
    )
    recent = []
    for e in since:
        first, last = e.pop("actor__first_name") or "", e.pop("actor__last_name") or ""
        name = f"{first} {last}".strip() or e["actor__username"]
        recent.append({**e, "actor_name": name, "created_at": e["created_at"].isoformat()})
    return {
        "version": pair.version,
        "current": snapshot(pair),
        "decided": decided_by(pair),
        "recent": recent,
        "image": Panel.objects.filter(pair__pk=pair.pk).values_list("image", flat=True).first(),
    }


def _name(user) -> str:
    """How pages name a person: full name, else username."""
    return user.get_full_name().strip() or user.get_username()


def _refuse_decided(pair: Pair, user) -> Conflict:
    decided = decided_by(pair)
    when = f"{pair.reviewed_at:%Y-%m-%d %H:%M} UTC" if pair.reviewed_at else "an unknown time"
    return Conflict(
        "decided",
        f"{decided['by'] or 'Someone'} decided this pair ({pair.status}) on {when}. Choose "
        '"change decision" to replace that decision.',
        extra=_conflict_extra(pair, user),
    )


def _decision_status(values: dict, proposal: dict | None) -> str:
    """Accepted when the expert kept the machine's proposal, edited when any value differs."""
    proposal = proposal or {}
    for field in EDITABLE:
        if normal(field, values[field]) != normal(field, proposal.get(field)):
            return Pair.Status.EDITED
    return Pair.Status.ACCEPTED


def _reviewer_values(pair: Pair, clean: dict) -> dict:
    """The pair's values with the fields the reviewer really changed: a posted value that only
    spells the stored one differently leaves the stored one as it is."""
    values = {field: getattr(pair, field) for field in EDITABLE}
    for field, value in clean.items():
        if value != normal(field, values[field]):
            values[field] = value
    return values


def _changed(before: dict, after: dict) -> dict:
    """The fields whose value changed, with their old values: an event's ``before``."""
    return {field: value for field, value in before.items() if after.get(field) != value}


def _round_reviews(pair: Pair) -> list[Review]:
    """Independent reviews of the pair since it was last reverted to be reviewed again."""
    return list(round_reviews(pair.pk).order_by("created_at", "id"))


def _consensus(reviews: list[Review]) -> bool:
    """Reviewers agree when they agree on accept/reject and, if accepted, on modality."""
    classes = {accept_class(r.decision) for r in reviews}
    if classes != {"accepted"}:
        return classes == {"rejected"}
    return len({r.modality for r in reviews}) == 1


def review_pair(
    pair_id: int,
    user,
    *,
    version: int,
    action: str,
    changes: dict | None = None,
    reason: str = "",
    note: str = "",
    redecide: bool = False,
) -> Pair:
    """Record an expert's decision: ``accept`` (as shown, with any edits) or ``reject``.

    With one review per item the decision is final. With more, each expert decides blind and
    the pair stays ``proposed`` until the last review: agreement finalises it, disagreement
    sends it to the adjudication queue (``disputed``), where a curator's decision is final.

    A decided pair is changed only on purpose: without ``redecide`` the write is refused
    (409, naming who decided and when). A re-decision is not independent (it was made with a
    decision in view), so it does not count toward agreement; one that replaces another
    person's decision is recorded as ``pair.overridden``.
    """
    require_role(user, REVIEWERS, "review")
    if action not in ("accept", "reject"):
        raise ServiceError("invalid", "action must be accept or reject.")
    clean = _clean(changes or {})
    if action == "reject":
        if reason not in RejectReason.values:
            raise ServiceError("invalid", "Choose a reason for rejecting.")
        if reason == RejectReason.OTHER and not note.strip():
            raise ServiceError("invalid", "Explain the reason when it is 'other'.")
    limits.check_text("note", note.strip(), limits.REJECT_NOTE)
    with transaction.atomic():
        pair, claim = _lock_for_write(pair_id, user, version)
        previous = decided_by(pair)
        if previous is not None and not redecide:
            raise _refuse_decided(pair, user)
        if previous is not None and _last_was_adjudication(pair):
            require_role(user, STAFF, "change an adjudicated decision")
        before = snapshot(pair)
        ever_decided = pair.reviewed_at is not None
        # Who had decided before: not a review value, so not in ``before``; an undo puts it
        # back (``undo_decision``). A pair never decided had nobody (no key: the common case).
        decider_before = {
            "by": pair.reviewed_by_id,
            "at": pair.reviewed_at.isoformat() if pair.reviewed_at else None,
        }
        needed = pair.reviews_needed or ProjectSettings.current().reviews_per_item
        adjudicating = pair.status == Pair.Status.DISPUTED
        if adjudicating:
            require_role(user, STAFF, "adjudicate")
        blind = needed > 1 and pair.status == Pair.Status.PROPOSED and not adjudicating
        values = _reviewer_values(pair, clean)
        if action == "accept" and not normal("text", values["text"]):
            raise ServiceError("invalid", "An accepted pair needs its caption text.")
        decision = (
            Pair.Status.REJECTED if action == "reject" else _decision_status(values, pair.proposed)
        )
        if blind and any(r.expert_id == user.pk for r in _round_reviews(pair)):
            raise Conflict("already_reviewed", "You already reviewed this pair.")

        now = timezone.now()
        reviewed = {**values, "reject_reason": reason, "reject_note": note.strip()}
        Review.objects.create(
            item_type=ITEM,
            item_id=pair.pk,
            textbook_id=pair.textbook_id,
            expert=user,
            decision=decision,
            modality=values["modality"],
            values=reviewed,
            adjudication=adjudicating,
            independent=previous is None and not adjudicating,
            seconds=(now - claim.created_at).total_seconds() if claim else None,
        )
        agreement_counts.refresh_item(pair.pk, added=True)  # kappa's counters, same transaction
        event_note = ""
        review_record = None
        if blind:
            reviews = _round_reviews(pair)
            review_record = {**reviewed, "decision": decision}
            if len(reviews) < needed:
                final = None
                event_action = REVIEWED
                event_note = f"review {len(reviews)} of {needed}"
            elif _consensus(reviews):
                final = reviews[-1]
                event_note = f"consensus of {len(reviews)} reviews"
            else:
                final = None
                pair.status = Pair.Status.DISPUTED
                event_action = DISPUTED
                event_note = f"{len(reviews)} reviews disagree"
        else:
            final = Review(decision=decision, values=reviewed)
        if final is not None:
            for field in EDITABLE:
                setattr(pair, field, final.values[field])
            pair.status = final.decision
            if final.decision == Pair.Status.REJECTED:
                pair.reject_reason = final.values["reject_reason"]
                pair.reject_note = final.values["reject_note"]
            else:
                pair.reject_reason, pair.reject_note = "", ""
            pair.reviewed_by, pair.reviewed_at = user, now
            event_action = decision_event(pair.status)
            if adjudicating:
                event_note = "adjudicated"
            elif previous is not None and previous["by_id"] != user.pk:
                event_action = OVERRIDDEN
                event_note = (
                    f"replaces {previous['by'] or 'an earlier'}'s decision "
                    f"({previous['status']}, {previous['at']})"
                )
            elif previous is not None:
                event_note = f"changes own decision ({previous['status']}, {previous['at']})"
        pair.version += 1
        pair.save(update_fields=[*SNAPSHOT, "version", "reviewed_by", "reviewed_at", "updated_at"])
        after = snapshot(pair)
        # Asked before this decision's event exists: has an earlier one drafted this text?
        draft = settings.DRAFT_ON_ACCEPT and drafting_service.needs_drafting(
            pair, before, ever_decided=ever_decided
        )
        if review_record is not None:
            after["review"] = review_record  # the blind reviewer's own values
        if ever_decided:
            after["decided_before"] = decider_before
        # The event's id rides on the row, for the page's Undo (``undo_decision``).
        pair.decision_event_id = record_event(
            user, pair, event_action, before=_changed(before, after), after=after, note=event_note
        ).pk
        Claim.objects.filter(item_type=ITEM, item_id=pair.pk).delete()
        if draft:
            dispatch.enqueue_drafting(pair.pk)
    return pair


def undo_decision(pair_id: int, user, *, event_id: int) -> Pair:
    """Take back ``user``'s own decision ``event_id`` moments after making it.

    A real revert, recorded as its own ``pair.undone`` event: the pair's values, status,
    reject reason and decider come back as they were before the decision, and the ``Review``
    row that decision added is removed (its values stay in the undo event), so an undone
    decision never counts toward throughput or agreement, and a blind reviewer may review
    again. Refused (409) once anyone has changed the pair since, once
    ``REVIEW_UNDO_SECONDS`` have passed, or while someone else holds the pair. The expert
    gets the pair back with a fresh lease, to decide it again.
    """
    require_role(user, REVIEWERS, "review")
    with transaction.atomic():
        pair = Pair.objects.select_for_update().filter(pk=pair_id).first()
        if pair is None:
            raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
        event = ReviewEvent.objects.filter(pk=event_id, target_type=ITEM, target_id=pair_id).first()
        if event is None or event.actor_id != user.pk or event.action not in UNDOABLE:
            raise ServiceError("invalid", "Only your own decision on this pair can be undone.")
        last = (
            ReviewEvent.objects.filter(target_type=ITEM, target_id=pair_id)
            .select_related("actor")
            .order_by("-created_at", "-id")
            .first()
        )
        if last.pk != event.pk:
            who = "you" if last.actor_id == user.pk else (last.actor or "the machine")
            raise Conflict(
                "changed_since",
                f"The pair changed since your decision ({last.action} by {who}, "
                f"{last.created_at:%H:%M:%S} UTC); it can no longer be undone.",
            )
        now = timezone.now()
        if now - event.created_at > timedelta(seconds=settings.REVIEW_UNDO_SECONDS):
            raise Conflict(
                "too_late",
                f"Decisions can be undone for {settings.REVIEW_UNDO_SECONDS} seconds; ask a "
                "curator to revert this one.",
            )
        live = Claim.objects.filter(item_type=ITEM, item_id=pair_id, expires_at__gt=now)
        holder = live.exclude(user=user).select_related("user").first()
        if holder is not None:
            raise Conflict("claimed", f"{holder.user} is reviewing this pair now.")
        current = snapshot(pair)
        restored = {field: event.after.get(field, current[field]) for field in SNAPSHOT}
        restored.update({k: v for k, v in (event.before or {}).items() if k in SNAPSHOT})
        for field, value in restored.items():
            setattr(pair, field, value)
        decider = event.after.get("decided_before") or {"by": None, "at": None}
        pair.reviewed_by_id = decider["by"]
        pair.reviewed_at = datetime.fromisoformat(decider["at"]) if decider["at"] else None
        pair.version += 1
        pair.save(update_fields=[*SNAPSHOT, "version", "reviewed_by", "reviewed_at", "updated_at"])
        review = (
            Review.objects.filter(
                item_type=ITEM, item_id=pair_id, expert=user, created_at__lte=event.created_at
            )
            .order_by("-created_at", "-id")
            .first()
        )
        before = _changed(current, restored)
        if review is not None:
            before["review"] = {"decision": review.decision, **review.values}
            review.delete()
            agreement_counts.refresh_item(pair_id)  # the undone decision no longer counts
        record_event(
            user, pair, UNDONE, before=before, after=snapshot(pair),
            note=f"undoes event {event.pk} ({event.action})",
        )  # fmt: skip
        Claim.objects.filter(item_type=ITEM, item_id=pair_id).exclude(
            pk__in=live.values("pk")
        ).delete()
        if not live.exists():
            Claim.objects.create(item_type=ITEM, item_id=pair_id, user=user,
                                 expires_at=now + _lease())  # fmt: skip
    return pair


def _last_was_adjudication(pair: Pair) -> bool:
    last = (
        Review.objects.filter(item_type=ITEM, item_id=pair.pk)
        .order_by("-created_at", "-id")
        .values_list("adjudication", flat=True)
        .first()
    )
    return bool(last)


def reviews_of(pair_id: int) -> list[Review]:
    return list(
        Review.objects.filter(item_type=ITEM, item_id=pair_id)
        .select_related("expert")
        .order_by("created_at", "id")
    )


def set_reviews_per_item(user, value: int) -> ProjectSettings:
    require_role(user, STAFF, "change project settings")
    if not 1 <= value <= 5:
        raise ServiceError("invalid", "Reviews per item must be between 1 and 5.")
    with transaction.atomic():
        current = ProjectSettings.objects.select_for_update().get_or_create(pk=1)[0]
        before = {"reviews_per_item": current.reviews_per_item}
        current.reviews_per_item = value
        current.save()
        record_event(user, current, EventAction.SETTINGS_CHANGED, before=before, after={
            "reviews_per_item": value})  # fmt: skip
    return current


def skip_pair(pair_id: int, user) -> None:
    """Leave the pair for someone else; it is not offered to this expert again."""
    require_role(user, REVIEWERS, "review")
    with transaction.atomic():
        pair = Pair.objects.filter(pk=pair_id).first()
        if pair is None:
            raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
        release_claim(user, pair_id)
        record_event(user, pair, SKIPPED)


def revert_pair(pair_id: int, user, *, event_id: int, version: int) -> Pair:
    """Return the pair to its state right after ``event_id``. The revert is itself an event.

    The whole state comes back: the review values and, when panel fixes happened since, the
    panel's box, letter and sub-caption, with pairs split off it removed and pairs merged
    into it restored; moved crops are re-rendered by the panel fixes' task.
    """
    from curation.services import panels  # panels imports this module

    require_role(user, STAFF, "revert reviews")
    event = ReviewEvent.objects.filter(pk=event_id, target_type=ITEM, target_id=pair_id).first()
    # Only an event that recorded the pair's values can be returned to (not, say, vqa.drafted).
    if (
        event is None
        or not isinstance(event.after, dict)
        or not {*SNAPSHOT, "panel"} & set(event.after)
    ):
        raise ServiceError("invalid", "That event does not belong to this pair or has no state.")
    with transaction.atomic():
        figure = panels.lock_figure_of(pair_id)  # panel fixes lock the figure before pairs
        pair, _ = _lock_for_write(pair_id, user, version)
        before = panels.pair_state(pair)
        layout = panels.revert_layout(pair, event, user, figure)
        state = {"status": Pair.Status.PROPOSED, "reject_reason": "", "reject_note": ""}
        state.update({k: v for k, v in event.after.items() if k in SNAPSHOT})
        for field, value in state.items():
            setattr(pair, field, value)
        if pair.status in DECIDED:  # the decision in force is now the one the curator restored
            pair.reviewed_by, pair.reviewed_at = user, timezone.now()
        if not layout and panels.pair_state(pair) == before:
            # Raised inside the transaction: the (unchanged) writes above roll back too.
            raise Conflict(
                "no_change",
                f"The pair is already as it was after event {event.pk} ({event.action}); "
                "reverting to it would change nothing.",
            )
        pair.version += 1
        pair.save()
        note = f"to the state after event {event.pk} ({event.action})"
        record_event(
            user, pair, REVERTED, before=before, after=panels.pair_state(pair),
            note=f"{note}; {layout}" if layout else note,
        )  # fmt: skip
    return pair


def history(pair_id: int) -> list[ReviewEvent]:
    return list(
        ReviewEvent.objects.filter(target_type=ITEM, target_id=pair_id)
        .select_related("actor")
        .order_by("created_at", "id")
    )
