"""VQA drafting on the ``llm`` queue: one task per pair, idempotent per prompt version."""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import shared_task
from django.conf import settings

from curation import drafting
from curation.models import Pair
from curation.services import drafting as drafting_service

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _client() -> drafting.LLMClient | None:
    """One client per worker process (its semaphore caps concurrency); None: templates."""
    if not settings.LLM_BASE_URL:
        return None
    limiter = None
    if settings.LLM_REQUESTS_PER_MINUTE:
        url = settings.LLM_RATE_LIMIT_REDIS_URL or settings.CELERY_BROKER_URL
        if url.startswith("redis://"):
            limiter = drafting.RedisTokenBucket(url, rate=settings.LLM_REQUESTS_PER_MINUTE / 60)
        else:
            log.warning("LLM_REQUESTS_PER_MINUTE needs Redis; the rate is not shared")
    return drafting.LLMClient(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        model=settings.LLM_MODEL,
        timeout=settings.LLM_TIMEOUT,
        concurrency=settings.LLM_CONCURRENCY,
        rate_limiter=limiter,
        prices=drafting.Prices(
            prompt_per_1k=settings.LLM_PRICE_PROMPT_PER_1K,
            completion_per_1k=settings.LLM_PRICE_COMPLETION_PER_1K,
        ),
        vision=settings.LLM_VISION,
        image_max_bytes=settings.LLM_IMAGE_MAX_BYTES,
        image_max_side=settings.LLM_IMAGE_MAX_SIDE,
    )


@shared_task(name="workers.llm.draft_pair", acks_late=True, reject_on_worker_lost=True)
def draft_pair(pair_id: int) -> int:
    """Draft the missing question types of one accepted pair; returns the items stored."""
    pair = (
        Pair.objects.select_related("panel", "panel__figure", "textbook")
        .filter(pk=pair_id, status__in=drafting_service.DRAFTABLE)
        .first()
    )
    if pair is None:
        return 0
    client = _client()
    vision = client is not None and client.vision
    types = drafting_service.missing_types(pair, llm=client is not None, vision=vision)
    if not types:
        return 0
    budget = None
    if client is not None:
        left = drafting_service.budget_left()
        if left == 0:
            log.info("drafting budget spent; pair %s not drafted", pair_id)
            return 0
        budget = drafting.Budget(max_tokens=left)
    existing = list(pair.vqa_items.values_list("question", flat=True))
    drafts = drafting.draft_items(
        drafting_service.source_for(pair, with_image=vision),
        client,
        question_types=types,
        budget=budget,
        existing_questions=existing,
        drop_ungrounded=settings.LLM_DROP_UNGROUNDED,
        max_parallel=settings.LLM_CONCURRENCY,
    )
    return len(drafting_service.record_drafts(pair_id, drafts))
