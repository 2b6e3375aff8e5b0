"""The one place that knows how a family's processor lays out image tokens, and masks labels.

Labels are -100 everywhere except on assistant answers (and the end-of-turn token the template
puts after them), so the model is never trained to predict the question or the image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ml.chat import ChatTemplateError, Message, render

IGNORE_INDEX = -100


@dataclass
class ChatExample:
    """One training conversation about one image."""

    image: str | Path | Image.Image
    messages: list[Message]
    meta: dict[str, Any] = field(default_factory=dict)


def load_image(image: str | Path | Image.Image) -> Image.Image:
    """RGB PIL image from a path or an image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as im:
        return im.convert("RGB")


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _image_token_id(processor: Any) -> int | None:
    token_id = getattr(processor, "image_token_id", None)
    if token_id is not None:
        return int(token_id)
    token = getattr(processor, "image_token", None)
    if token is None:
        return None
    return int(processor.tokenizer.convert_tokens_to_ids(token))


class ChatCollator:
    """Batch `ChatExample`s into model inputs with answer-only labels.

    How answer spans are found, for any template: the text before each assistant answer is
    rendered with `add_generation_prompt=True` and tokenised without images; its common prefix
    with the tokenised full text is the unlabeled part. The processor then expands image
    placeholders into many tokens, all before the first answer, so every span shifts by the
    same amount (the expanded length minus the unexpanded length), which is checked.
    """

    def __init__(self, processor: Any, max_length: int = 2048, train_on_all_turns: bool = True):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_length = max_length
        self.train_on_all_turns = train_on_all_turns
        self.image_token_id = _image_token_id(processor)
        if self.tokenizer.pad_token_id is None:
            raise ChatTemplateError("the tokenizer has no pad token")

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    def answer_spans(self, messages: list[Message]) -> tuple[str, list[tuple[int, int]]]:
        """Full text and the (start, end) token spans of answers, before image expansion."""
        full_text = render(self.processor, messages)
        full_ids = self._ids(full_text)
        spans = []
        turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        if not self.train_on_all_turns:
            turns = turns[-1:]
        for i in turns:
            prefix = self._ids(render(self.processor, messages[:i], add_generation_prompt=True))
            upto = self._ids(render(self.processor, messages[: i + 1]))
            start = _common_prefix(prefix, full_ids)
            end = _common_prefix(upto, full_ids)
            if end <= start:
                raise ChatTemplateError(
                    "the chat template does not render the answer after the generation prompt"
                )
            spans.append((start, end))
        return full_text, spans

    def __call__(self, examples: list[ChatExample]) -> dict[str, torch.Tensor]:
        texts, spans = [], []
        for ex in examples:
            text, sp = self.answer_spans(ex.messages)
            texts.append(text)
            spans.append(sp)
        images = [load_image(ex.image) for ex in examples]
        batch = self.processor(
            text=texts, images=images, return_tensors="pt", padding=True, padding_side="right"
        )
        input_ids = batch["input_ids"]
        attention = batch["attention_mask"]
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for row, (text, sp) in enumerate(zip(texts, spans, strict=True)):
            unexpanded = self._ids(text)
            length = int(attention[row].sum())
            shift = length - len(unexpanded)
            for start, end in sp:
                got = input_ids[row, start + shift : end + shift].tolist()
                if got != unexpanded[start:end]:
                    raise ChatTemplateError(
                        "image tokens are not all before the answer, or the processor "
                        "tokenises differently from its tokenizer"
                    )
                labels[row, start + shift : end + shift] = torch.tensor(got)
        batch["labels"] = labels
        return self._truncate(dict(batch))

    def _truncate(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Cut to `max_length`; refuse to cut through image tokens (the model would crash)."""
        ids = batch["input_ids"]
        bsz, seq = ids.shape
        if seq <= self.max_length:
            return batch
        if self.image_token_id is not None:
            before = (ids == self.image_token_id).sum(dim=1)
            after = (ids[:, : self.max_length] == self.image_token_id).sum(dim=1)
            if bool((before != after).any()):
                raise ValueError(
                    f"an example is longer than max_length={self.max_length} before its image "
                    "tokens end; raise max_length or drop the example"
                )
        for key, value in batch.items():
            if torch.is_tensor(value) and value.dim() >= 2 and value.shape[:2] == (bsz, seq):
                batch[key] = value[:, : self.max_length]
        return batch


def sequence_length_hint(processor: Any, messages: list[Message]) -> int:
    """Cheap length of an example in text tokens, for length-grouped batching."""
    return len(processor.tokenizer(render(processor, messages))["input_ids"])
