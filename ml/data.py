"""Turning release records into chat examples for each stage.

Captions become "describe" instructions and VQA items become single-turn conversations; both
go through `ml.chat.conversation`, the same helper evaluation uses for its prompts.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ml.chat import conversation
from ml.collator import ChatExample
from ml.config import DataConfig
from ml.release import Release


def caption_examples(
    release: Release, split: str, data: DataConfig, skipped: Counter | None = None
) -> list[ChatExample]:
    """Image-caption pairs as "describe" instructions (the align stage, and part of SFT).

    An empty caption is skipped (and counted in `skipped`): as a target it teaches the model
    to end its answer at once.
    """
    out = []
    for pair in release.pairs(split):
        if not (pair.caption or "").strip():
            _count(skipped, "empty_caption")
            continue
        out.append(
            ChatExample(
                image=release.image_path(pair.image),
                messages=conversation(data.describe_prompt, pair.caption),
                meta={"id": pair.id, "kind": "caption", "modality": pair.modality},
            )
        )
    return _limit(out, data.limit)


def sft_examples(
    release: Release, split: str, data: DataConfig, skipped: Counter | None = None
) -> list[ChatExample]:
    """VQA conversations plus (optionally) captions, answers only in the loss; empty answers
    are skipped and counted in `skipped`."""
    modality = {p.id: p.modality for p in release.pairs()}
    out = []
    for item in release.vqa(split):
        if not (item.answer or "").strip():
            _count(skipped, "empty_answer")
            continue
        out.append(
            ChatExample(
                image=release.image_path(item.image),
                messages=conversation(item.question, item.answer),
                meta={
                    "id": item.id,
                    "kind": "vqa",
                    "question_type": item.question_type,
                    "modality": modality.get(item.pair_id),
                },
            )
        )
    if data.include_captions:
        whole = DataConfig(**{**data.__dict__, "limit": 0})
        out.extend(caption_examples(release, split, whole, skipped))
    return _limit(out, data.limit)


@dataclass
class PreferenceExample:
    """A prompt about an image with a preferred and a dispreferred answer."""

    image: object
    prompt: str
    chosen: str
    rejected: str
    meta: dict

    def as_chat(self, which: str) -> ChatExample:
        """The chosen or rejected side as a training conversation."""
        answer = self.chosen if which == "chosen" else self.rejected
        return ChatExample(self.image, conversation(self.prompt, answer), self.meta)


def preference_examples(
    release: Release, split: str, data: DataConfig, skipped: Counter | None = None
) -> list[PreferenceExample]:
    """Expert corrections: chosen = expert text, rejected = the LLM draft (an empty chosen
    answer is skipped and counted)."""
    if skipped is not None:
        skipped["empty_chosen"] += sum(
            1 for p in release.preferences(split) if not (p.chosen or "").strip()
        )
    out = [
        PreferenceExample(
            image=release.image_path(p.image),
            prompt=p.prompt,
            chosen=p.chosen,
            rejected=p.rejected,
            meta={"pair_id": p.pair_id, "source": p.source},
        )
        for p in release.preferences(split)
        if p.chosen.strip() and p.chosen.strip() != p.rejected.strip()
    ]
    return _limit(out, data.limit)


def _count(skipped: Counter | None, reason: str) -> None:
    if skipped is not None:
        skipped[reason] += 1


def _limit(items: list, limit: int) -> list:
    if limit and len(items) > limit:
        rng = random.Random(0)
        items = rng.sample(items, limit)
    return items
