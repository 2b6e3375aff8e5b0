"""Turning drafts into stored VQA items: idempotent per pair and prompt version, on a budget.

The drafting itself (prompts, the LLM client, validation, grounding) is ``curation.drafting``,
which knows nothing of Django; this module maps rows to its inputs and its outputs to rows.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F

from curation import drafting
from curation.drafting.template import TEMPLATE_TYPES
from curation.events import EventAction
from curation.models import Pair, ProjectSettings, ReviewEvent, VQAItem
from curation.services.audit import record_event
from curation.services.roles import require_role
from skinplatform.accounts.roles import STAFF

log = logging.getLogger(__name__)

DRAFTABLE = (Pair.Status.ACCEPTED, Pair.Status.EDITED)


def needs_drafting(pair: Pair, before: dict, *, ever_decided: bool) -> bool:
    """Whether the decision just made on ``pair`` should queue VQA drafting.

    The first acceptance drafts. A re-decision drafts only when it leaves the pair accepted
    with a text it was never accepted with before: drafts of an earlier accepted text were
    queued when that text was accepted, and drafting is idempotent per pair and prompt
    version, so a second run would only cost a task. ``before`` is the pair's state before the
    decision; ``ever_decided`` whether any decision had been final on it.
    """
    if pair.status not in DRAFTABLE:
        return False
    if not ever_decided:
        return True
    if before.get("status") in DRAFTABLE and before.get("text") == pair.text:
        return False
    return not ReviewEvent.objects.filter(
        target_type="pair", target_id=pair.pk, after__status__in=DRAFTABLE, after__text=pair.text
    ).exists()


def panel_image(pair: Pair) -> bytes | None:
    """The pair's panel crop from storage, for a vision drafter; None when it cannot be read.

    A missing crop is not fatal: the vision client then drafts from the text and labels it.
    """
    name = pair.panel.image
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    except (OSError, ValueError) as e:
        log.warning("pair %s: crop %s unreadable for vision drafting: %s", pair.pk, name, e)
        return None


def source_for(pair: Pair, *, with_image: bool = False) -> drafting.DraftSource:
    figure = pair.panel.figure
    return drafting.DraftSource(
        pair_id=pair.pk,
        caption=figure.caption or pair.text,
        sub_caption=pair.panel.subcaption if pair.text != figure.caption else "",
        section_path=tuple(figure.section or ()),
        mentions=tuple(m.get("text", "") for m in figure.mentions or ()),
        book_title=pair.textbook.title,
        book_edition=pair.textbook.edition,
        modality=pair.modality,
        diagnosis=pair.diagnosis,
        age=pair.age,
        sex=pair.sex,
        image=panel_image(pair) if with_image else None,
    )


def current_versions(llm: bool, vision: bool = False) -> dict[str, str]:
    """Question type -> the prompt version drafting would use now (vision variants if on)."""
    if llm:
        return drafting.prompt_versions(vision=vision)
    return {t: drafting.TEMPLATE_VERSION for t in TEMPLATE_TYPES}


def missing_types(pair: Pair, llm: bool, vision: bool = False) -> list[str]:
    """Types with no item yet at the current prompt version: re-running drafts nothing new."""
    done = set(VQAItem.objects.filter(pair=pair).values_list("question_type", "prompt_version"))
    return [t for t, v in current_versions(llm, vision).items() if (t, v) not in done]


def budget_left() -> int | None:
    """Tokens drafting may still spend (None: no budget set)."""
    if not settings.LLM_BUDGET_TOKENS:
        return None
    spent = ProjectSettings.current().llm_tokens_spent
    return max(0, settings.LLM_BUDGET_TOKENS - spent)


def record_drafts(pair_id: int, drafts: list[drafting.Draft]) -> list[VQAItem]:
    """Store usable drafts (skipping types already drafted at that version); charge the ledger."""
    spent_tokens = sum(d.generator.prompt_tokens + d.generator.completion_tokens for d in drafts)
    spent_cost = sum(d.generator.cost for d in drafts)
    with transaction.atomic():
        pair = Pair.objects.select_for_update().get(pk=pair_id)
        done = set(VQAItem.objects.filter(pair=pair).values_list("question_type", "prompt_version"))
        made = []
        for d in drafts:
            key = (d.question_type, d.generator.prompt_version)
            if not d.ok or key in done:
                continue
            done.add(key)
            made.append(
                VQAItem.objects.create(
                    pair=pair,
                    question_type=d.question_type,
                    question=d.question,
                    answer=d.answer,
                    evidence=d.evidence,
                    generator={
                        "kind": d.generator.kind,
                        "model": d.generator.model,
                        "prompt_version": d.generator.prompt_version,
                        "prompt_tokens": d.generator.prompt_tokens,
                        "completion_tokens": d.generator.completion_tokens,
                        "cost": d.generator.cost,
                        "image": d.generator.image,
                        "image_note": d.generator.image_note,
                        "image_bytes": d.generator.image_bytes,
                        "basis": d.basis,
                    },
                    prompt_version=d.generator.prompt_version,
                    draft={"question": d.question, "answer": d.answer, "evidence": d.evidence},
                    grounded=d.grounded,
                    unsupported_terms=list(d.unsupported_terms),
                    visual=d.visual,
                    visual_terms=list(d.visual_terms),
                    image_input=d.generator.image,
                    # Visual or not, a draft waits for an expert: nothing here accepts one.
                    status=VQAItem.Status.DRAFTED,
                )
            )
        if spent_tokens or spent_cost:
            ProjectSettings.current()
            ProjectSettings.objects.filter(pk=1).update(
                llm_tokens_spent=F("llm_tokens_spent") + spent_tokens,
                llm_cost_spent=F("llm_cost_spent") + spent_cost,
            )
        failures = [f"{d.question_type}: {d.error_kind}" for d in drafts if not d.ok]
        record_event(
            None,
            pair,
            EventAction.VQA_DRAFTED,
            after={"items": [i.pk for i in made], "tokens": spent_tokens, "cost": spent_cost},
            note="; ".join(failures)[:500],
        )
    return made


def request_drafting(user, pair_ids: list[int]) -> int:
    """A curator asks for drafts on a selection; returns how many pairs were queued."""
    require_role(user, STAFF, "start drafting")
    from curation.services import dispatch

    ids = list(
        Pair.objects.filter(pk__in=pair_ids, status__in=DRAFTABLE).values_list("pk", flat=True)
    )
    with transaction.atomic():
        for pair_id in ids:
            dispatch.enqueue_drafting(pair_id)
    return len(ids)


def vqa_progress() -> dict:
    counts = dict(VQAItem.objects.values_list("status").annotate(n=Count("id")))
    ledger = ProjectSettings.current()
    return {
        "items": counts,
        "tokens_spent": ledger.llm_tokens_spent,
        "cost_spent": round(ledger.llm_cost_spent, 4),
        "token_budget": settings.LLM_BUDGET_TOKENS or None,
        "drafter": "llm" if settings.LLM_BASE_URL else "template",
        "vision": bool(settings.LLM_BASE_URL and settings.LLM_VISION),
    }
