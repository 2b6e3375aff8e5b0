"""Losses with torch alone (no PIL, no processors), so GPU benchmarks import them cheaply."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # the label of positions without loss (same as ml.collator)


def answer_only_sft_loss(
    model: Any, batch: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, float]]:
    """The same loss as `sft_loss`, but logits only where some row of the batch has a label.

    Prompt and image positions carry no loss, yet the plain forward projects all of them onto
    the vocabulary (and upcasts those logits to fp32). `logits_to_keep` (transformers) skips
    them; the cross-entropy is the mean over answer tokens, exactly as before.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]  # position t predicts token t + 1
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().flatten()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, logits_to_keep=keep).logits
    if keep.numel() == 0:  # no answer token survived truncation: nothing to learn here
        return logits.sum() * 0.0, {}
    loss = F.cross_entropy(
        logits.float().flatten(0, 1), targets[:, keep].flatten(), ignore_index=IGNORE_INDEX
    )
    return loss, {}
