"""Losses with torch alone (no PIL, no processors), so GPU benchmarks import them cheaply."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # the label of positions without loss (same as ml.collator)


def drop_redundant_padding_mask(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch without its attention mask when every row is right-padded (or unpadded).

    Under causal attention a token never sees later positions, so padding at the end of a row
    cannot change any real token's output: the mask is redundant. Without it, SDPA can take its
    fused causal (flash) kernel instead of a masked one, and no 4-D mask is built. Left-padded
    rows (generation) keep their mask. Pad positions then compute garbage, which carries no
    label and is never read.
    """
    mask = batch.get("attention_mask")
    if mask is None or mask.dim() != 2:
        return batch
    if mask.shape[1] > 1 and not bool((mask[:, 1:] <= mask[:, :-1]).all()):
        return batch  # some row has a real token after a pad: not right padding
    return {k: v for k, v in batch.items() if k != "attention_mask"}


def answer_only_sft_loss(
    model: Any, batch: dict[str, Any], mask_free: bool = True
) -> tuple[torch.Tensor, dict[str, float]]:
    """The same loss as `sft_loss`, but logits only where some row of the batch has a label.

    Prompt and image positions carry no loss, yet the plain forward projects all of them onto
    the vocabulary (and upcasts those logits to fp32). `logits_to_keep` (transformers) skips
    them; the cross-entropy is the mean over answer tokens, exactly as before. With
    `mask_free`, a right-padded batch runs without its (redundant) padding mask.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]  # position t predicts token t + 1
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().flatten()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if mask_free:
        inputs = drop_redundant_padding_mask(inputs)
    logits = model(**inputs, logits_to_keep=keep).logits
    if keep.numel() == 0:  # no answer token survived truncation: nothing to learn here
        return logits.sum() * 0.0, {}
    loss = F.cross_entropy(
        logits.float().flatten(0, 1), targets[:, keep].flatten(), ignore_index=IGNORE_INDEX
    )
    return loss, {}


def answer_logps(model: Any, batch: dict[str, Any], mask_free: bool = True) -> torch.Tensor:
    """Sum of the log-probabilities of each row's labelled (answer) tokens.

    As in `answer_only_sft_loss`, the vocabulary projection runs only at positions where some
    row has a label, and the fp32 log-softmax only over those positions: a preference batch is
    mostly image and prompt tokens, whose full-vocabulary fp32 logits were the largest tensor
    of a DPO step. `cross_entropy(reduction="none")` is minus the gathered log-softmax.
    """
    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().flatten()
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "ref_logps")}
    if mask_free:
        inputs = drop_redundant_padding_mask(inputs)
    logits = model(**inputs, logits_to_keep=keep).logits
    if keep.numel() == 0:
        return logits.sum(dim=(1, 2)) * 0.0
    kept = targets[:, keep]
    token_logps = -F.cross_entropy(
        logits.float().transpose(1, 2), kept, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return token_logps.sum(dim=-1)
