"""Expert review of drafted VQA items, with the same leases, versions and audit as pairs.

The unit an expert claims is a pair's set of drafted items (claim ``item_type="vqa"``), so two
experts never review questions about the same image at once. The original draft is never
overwritten: an edit or a rejection keeps ``draft`` beside the expert's text, which releases
turn into preference pairs (chosen = expert, rejected = draft).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from curation import limits
from curation.events import EventAction
from curation.models import Claim, Pair, Review, ReviewEvent, VQAItem
from curation.services.audit import record_event
from curation.services.errors import Conflict, ServiceError
from curation.services.roles import require_role
from skinplatform.accounts.roles import REVIEWERS

ITEM = "vqa"
REJECT_REASONS = {
    "ungrounded": "states something the source does not support",
    "wrong": "medically wrong",
    "ambiguous": "question is ambiguous or unanswerable from the image",
    "trivial": "too trivial to be useful",
    "duplicate": "duplicates another question",
    "other": "other (explain)",
}
SNAPSHOT = ("status", "question", "answer", "reject_reason", "reject_note")
REVIEWED_PAIRS = (Pair.Status.ACCEPTED, Pair.Status.EDITED)


def snapshot(item: VQAItem) -> dict:
    return {field: getattr(item, field) for field in SNAPSHOT}


def _lease() -> timedelta:
    return timedelta(minutes=settings.CLAIM_MINUTES)


def claim_next_pair(
    user, *, textbook_id: int | None = None, after: int | None = None
) -> Pair | None:
    """The oldest reviewed pair with drafted items that nobody holds, leased to ``user``.

    ``after`` is the image the expert is leaving ("next image"): the pick is the first such
    pair after it in id order, wrapping round to the start, and never that pair itself, so
    "next" always moves on (the expert's lease on it goes). Without ``after`` a reload gives
    back the pair the expert holds.
    """
    require_role(user, REVIEWERS, "review")
    for _ in range(5):
        with transaction.atomic():
            now = timezone.now()
            mine = (
                Claim.objects.filter(item_type=ITEM, user=user, expires_at__gt=now)
                .values_list("item_id", flat=True)
                .first()
            )
            if (
                after is None
                and mine
                and VQAItem.objects.filter(pair_id=mine, status="drafted").exists()
            ):
                return Pair.objects.get(pk=mine)
            live = Claim.objects.filter(item_type=ITEM, expires_at__gt=now).values("item_id")
            waiting = VQAItem.objects.filter(status=VQAItem.Status.DRAFTED).values("pair_id")
            candidates = Pair.objects.filter(status__in=REVIEWED_PAIRS, pk__in=waiting)
            if textbook_id is not None:
                candidates = candidates.filter(textbook_id=textbook_id)
            free = candidates.exclude(pk__in=live.exclude(user=user))
            if after is not None:
                free = free.exclude(pk=after)
            pair = None
            if after is not None:  # the next one after it, else wrap round to the start
                later = free.filter(pk__gt=after).order_by("id")
                pair = later.select_for_update(skip_locked=True).first()
            if pair is None:
                pair = free.order_by("id").select_for_update(skip_locked=True).first()
            if pair is None:
                return None
            Claim.objects.filter(item_type=ITEM, user=user).delete()
            Claim.objects.filter(item_type=ITEM, item_id=pair.pk, expires_at__lte=now).delete()
            try:
                with transaction.atomic():
                    Claim.objects.create(
                        item_type=ITEM, item_id=pair.pk, user=user, expires_at=now + _lease()
                    )
            except IntegrityError:
                continue
            return pair
    return None


def holder(pair_id: int) -> Claim | None:
    return (
        Claim.objects.filter(item_type=ITEM, item_id=pair_id, expires_at__gt=timezone.now())
        .select_related("user")
        .first()
    )


def hold(user, pair_id: int) -> Claim | None:
    """Lease the pair's items to ``user`` unless another expert holds them."""
    require_role(user, REVIEWERS, "review")
    with transaction.atomic():
        now = timezone.now()
        claim = Claim.objects.select_for_update().filter(item_type=ITEM, item_id=pair_id).first()
        if claim is not None and claim.user_id != user.pk and claim.expires_at > now:
            return claim
        if claim is None:
            claim = Claim(item_type=ITEM, item_id=pair_id, user=user)
        claim.user, claim.expires_at, claim.renewed_at = user, now + _lease(), now
        claim.save()
        return claim


def _lock(item_id: int, user, version: int) -> VQAItem:
    item = VQAItem.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise ServiceError("not_found", f"VQA item {item_id} does not exist.", status=404)
    claim = holder(item.pair_id)
    if claim is not None and claim.user_id != user.pk:
        raise Conflict("claimed", f"{claim.user} is reviewing these questions now.")
    if item.version != version:
        raise Conflict(
            "stale",
            "Someone changed this question after you opened it. Review their change, then "
            "reapply yours or discard it.",
            extra={"version": item.version, "current": snapshot(item)},
        )
    return item


_LIMITS = {
    "question_type": limits.QUESTION_TYPE,
    "question": limits.QUESTION,
    "answer": limits.ANSWER,
    "note": limits.REJECT_NOTE,
}


def _check_lengths(**texts: str | None) -> None:
    """The expert's texts against their limits (a draft is as long as the LLM's tokens allow)."""
    for field, text in texts.items():
        if text is not None:
            limits.check_text(field, text.strip(), _LIMITS[field], field.replace("_", " "))


def review_item(
    item_id: int,
    user,
    *,
    version: int,
    action: str,
    question: str | None = None,
    answer: str | None = None,
    reason: str = "",
    note: str = "",
) -> VQAItem:
    """Accept (as drafted or edited) or reject one item; the draft stays as it was."""
    require_role(user, REVIEWERS, "review")
    if action not in ("accept", "reject"):
        raise ServiceError("invalid", "action must be accept or reject.")
    if action == "reject" and reason not in REJECT_REASONS:
        raise ServiceError("invalid", "Choose a reason for rejecting.")
    if action == "reject" and reason == "other" and not note.strip():
        raise ServiceError("invalid", "Explain the reason when it is 'other'.")
    _check_lengths(question=question, answer=answer, note=note)
    with transaction.atomic():
        item = _lock(item_id, user, version)
        before = snapshot(item)
        if question is not None:
            item.question = question.strip()
        if answer is not None:
            item.answer = answer.strip()
        if not item.question or not item.answer:
            raise ServiceError("invalid", "A question and an answer are both needed.")
        if action == "reject":
            item.status = VQAItem.Status.REJECTED
            item.reject_reason, item.reject_note = reason, note.strip()
        else:
            draft = item.draft or {}
            same = (item.question, item.answer) == (draft.get("question"), draft.get("answer"))
            item.status = VQAItem.Status.ACCEPTED if same else VQAItem.Status.EDITED
            item.reject_reason, item.reject_note = "", ""
        now = timezone.now()
        item.version += 1
        item.reviewed_by, item.reviewed_at = user, now
        item.save()
        Review.objects.create(
            item_type="vqa",
            item_id=item.pk,
            textbook_id=item.pair.textbook_id,
            expert=user,
            decision=item.status,
            values={"question": item.question, "answer": item.answer, "reason": reason},
        )
        record_event(user, item, f"vqa.{item.status}", before=before, after=snapshot(item))
        if not VQAItem.objects.filter(pair_id=item.pair_id, status="drafted").exists():
            Claim.objects.filter(item_type=ITEM, item_id=item.pair_id).delete()
    return item


def add_item(pair_id: int, user, *, question_type: str, question: str, answer: str) -> VQAItem:
    """An expert's own question: accepted as written, with no draft (so no preference pair)."""
    require_role(user, REVIEWERS, "review")
    question, answer = question.strip(), answer.strip()
    if not question or not answer or not question_type.strip():
        raise ServiceError("invalid", "A question type, a question and an answer are needed.")
    _check_lengths(question_type=question_type.strip(), question=question, answer=answer)
    with transaction.atomic():
        pair = Pair.objects.select_for_update().filter(pk=pair_id).first()
        if pair is None:
            raise ServiceError("not_found", f"Pair {pair_id} does not exist.", status=404)
        item = VQAItem.objects.create(
            pair=pair,
            question_type=question_type.strip(),
            question=question,
            answer=answer,
            generator={"kind": "expert", "author": user.username},
            status=VQAItem.Status.ACCEPTED,
            reviewed_by=user,
            reviewed_at=timezone.now(),
        )
        record_event(user, item, EventAction.VQA_ADDED, after=snapshot(item))
    return item


def history(item_id: int) -> list[ReviewEvent]:
    return list(
        ReviewEvent.objects.filter(target_type="vqaitem", target_id=item_id)
        .select_related("actor")
        .order_by("created_at", "id")
    )
