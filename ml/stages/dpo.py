"""Preference alignment (DPO) on expert corrections: chosen = expert text, rejected = LLM draft.

The policy starts from the SFT adapter, and the reference is that same SFT model. Because the
reference never changes, its log-probabilities are computed once before training, which keeps
a single model in memory (no second copy, no adapter switching).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from ml.checkpoint import checkpointer_for
from ml.collator import ChatCollator, sequence_length_hint
from ml.config import Config
from ml.data import PreferenceExample, preference_examples
from ml.loop import LogFn, _autocast, _to_device, fit, require_one_step, setup_distributed
from ml.losses import answer_logps
from ml.modeling import load_for_training, torch_dtype
from ml.release import Release
from ml.stages.common import (
    effective_config,
    print_log,
    probe_loss,
    save_stage,
    seed_everything,
    start_fingerprint,
)

log = logging.getLogger(__name__)


def sequence_logps(model: Any, batch: dict[str, Any]) -> torch.Tensor:
    """Sum of log-probabilities of the labelled (answer) tokens, per row (answer positions
    only: see `ml.losses.answer_logps`)."""
    return answer_logps(model, batch)


class PreferenceCollator:
    """Chosen rows then rejected rows in one batch, with the cached reference log-probs."""

    def __init__(self, chat: ChatCollator, ref_logps: dict[int, tuple[float, float]] | None):
        self.chat = chat
        self.ref_logps = ref_logps

    def __call__(self, items: list[tuple[int, PreferenceExample]]) -> dict[str, Any]:
        chosen = [ex.as_chat("chosen") for _, ex in items]
        rejected = [ex.as_chat("rejected") for _, ex in items]
        batch = self.chat(chosen + rejected)
        if self.ref_logps is not None:
            ref = [self.ref_logps[i] for i, _ in items]
            batch["ref_logps"] = torch.tensor(
                [r[0] for r in ref] + [r[1] for r in ref], dtype=torch.float64
            )
        return batch


def dpo_loss_fn(beta: float, label_smoothing: float):
    """Sigmoid DPO loss (Rafailov et al. 2023), with optional conservative label smoothing."""

    def loss_fn(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        logps = sequence_logps(model, batch)
        n = logps.shape[0] // 2
        ref = batch["ref_logps"].to(logps.dtype)
        chosen_reward = logps[:n] - ref[:n]
        rejected_reward = logps[n:] - ref[n:]
        logits = beta * (chosen_reward - rejected_reward)
        loss = (
            -F.logsigmoid(logits) * (1 - label_smoothing) - F.logsigmoid(-logits) * label_smoothing
        ).mean()
        stats = {
            "reward_margin": float((chosen_reward - rejected_reward).mean().detach()),
            "reward_accuracy": float((logits > 0).float().mean().detach()),
            "policy_margin": float((logps[:n] - logps[n:]).mean().detach()),
        }
        return loss, stats

    return loss_fn


@torch.no_grad()
def preference_margins(
    model: Any,
    items: list[tuple[int, PreferenceExample]],
    chat: ChatCollator,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int = 4,
) -> dict[int, tuple[float, float]]:
    """log p(chosen) and log p(rejected) per example under `model` (reference or check)."""
    was_training = model.training
    model.eval()
    collate = PreferenceCollator(chat, None)
    out: dict[int, tuple[float, float]] = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = _to_device(collate(chunk), device, dtype)
        with _autocast(device, dtype):
            logps = sequence_logps(model, batch).double().cpu()
        n = len(chunk)
        for j, (idx, _) in enumerate(chunk):
            out[idx] = (float(logps[j]), float(logps[n + j]))
    model.train(was_training)
    return out


def run(cfg: Config, on_log: LogFn | None = print_log) -> dict[str, Any]:
    """Run DPO from the SFT output named by `train.init_from`; return the summary."""
    dist = setup_distributed()
    cfg = effective_config(cfg, dist)
    if not cfg.train.init_from:
        raise ValueError("dpo needs train.init_from: the SFT stage's output folder")
    if not cfg.data.release:
        raise ValueError("data.release must name a release folder")
    if cfg.data.extra:  # one recipe file serves every stage: say what DPO leaves out
        log.warning("dpo trains on the release's preference pairs; data.extra is not used")
    release = Release(cfg.data.release, verify=cfg.data.verify)
    prefs = preference_examples(release, cfg.data.train_split, cfg.data)
    if not prefs:
        raise ValueError("the release has no usable preference pairs in the train split")
    require_one_step(len(prefs), cfg.train, dist.world, "preference pairs")
    items = list(enumerate(prefs))
    ckpt = checkpointer_for(cfg.train, dist.rank, dist.world)
    seed_everything(cfg.train.seed)
    model, processor, family = load_for_training(
        cfg.model, cfg.lora, cfg.train.init_from, device=dist.device
    )
    started = start_fingerprint(model)
    dtype = torch_dtype(cfg.model.dtype)
    chat = ChatCollator(processor, max_length=cfg.data.max_length)
    if "ref_logps" in ckpt.meta:  # resumed: the reference pass is not repeated
        ref = {int(i): (float(c), float(r)) for i, (c, r) in ckpt.meta["ref_logps"].items()}
    else:
        ref = preference_margins(model, items, chat, dist.device, dtype)
        ckpt.meta["ref_logps"] = {str(i): list(v) for i, v in ref.items()}
    lengths = [
        sequence_length_hint(processor, ex.as_chat("chosen").messages)
        + sequence_length_hint(processor, ex.as_chat("rejected").messages)
        for _, ex in items
    ]
    collate = PreferenceCollator(chat, ref)
    loss_fn = dpo_loss_fn(cfg.dpo.beta, cfg.dpo.label_smoothing)

    def probe() -> float:
        return probe_loss(model, items, collate, loss_fn, dist, dtype, cfg.train.micro_batch_size)

    if "probe_loss_before" in ckpt.meta:
        probe_before = ckpt.meta["probe_loss_before"]
    else:
        probe_before = ckpt.meta["probe_loss_before"] = probe()
    history = fit(
        model,
        items,
        lengths,
        collate,
        loss_fn,
        cfg.train,
        dist,
        input_dtype=dtype,
        projector_marker=family.projector.rsplit(".", 1)[-1],
        on_log=on_log,
        checkpointer=ckpt,
    )
    after = preference_margins(model, items, chat, dist.device, dtype)
    margin_before = sum(c - r for c, r in ref.values()) / len(ref)
    margin_after = sum(c - r for c, r in after.values()) / len(after)
    return save_stage(
        model,
        processor,
        family,
        cfg,
        "dpo",
        history,
        dist,
        extra={
            "release": release.name,
            "examples": len(items),
            "margin_before": margin_before,
            "margin_after": margin_after,
            "probe_loss_before": probe_before,
            "probe_loss_after": probe(),
            **started,
            **ckpt.summary(),
        },
    )
