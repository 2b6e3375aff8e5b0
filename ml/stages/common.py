"""What every stage does around its loop: load, pick the device and dtype, save artefacts."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ml.config import Config, dump_config
from ml.families import Family
from ml.loop import DistInfo, LossFn, _autocast, _to_device, save_json
from ml.modeling import (
    PROJECTOR_FILE,
    is_peft,
    save_projector,
    summarize_trainable,
    torch_dtype,
)

log = logging.getLogger(__name__)


def print_log(record: dict[str, Any]) -> None:
    """Default progress sink: one JSON line per logged step on stdout."""
    print(json.dumps(record, sort_keys=True), file=sys.stdout, flush=True)


def effective_dtype(cfg: Config, dist: DistInfo) -> torch.dtype:
    """The configured dtype, but float32 on CPU for half precisions (slow and lossy there)."""
    dtype = torch_dtype(cfg.model.dtype)
    if dist.device.type == "cpu" and dtype != torch.float32:
        log.warning("dtype %s on CPU: using float32 instead", cfg.model.dtype)
        return torch.float32
    return dtype


def loss_trend(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean loss of the first and of the last quarter of the steps (at least one step each).

    One step's loss depends on which examples its batch drew; the means of a few steps say
    whether the loss went down without that noise, for the run record the platform shows.
    """
    if not history:
        return {}
    k = max(1, len(history) // 4)
    losses = [float(h["loss"]) for h in history]
    return {"loss_start_mean": sum(losses[:k]) / k, "loss_end_mean": sum(losses[-k:]) / k}


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (CPU and every GPU) before a stage builds anything.

    A fresh LoRA adapter's A matrices are drawn from torch's global generator; without this a
    stage's result depended on whatever ran before it in the process (a worker's earlier runs,
    a test session), and `train.seed` only fixed the batch order.
    """
    random.seed(seed)
    torch.manual_seed(seed)


PROBE_EXAMPLES = 16


@torch.no_grad()
def probe_loss(
    model: Any,
    examples: Sequence[Any],
    collate: Callable[[list[Any]], dict[str, Any]],
    loss_fn: LossFn,
    dist: DistInfo,
    dtype: torch.dtype,
    micro_batch_size: int,
    n: int = PROBE_EXAMPLES,
) -> float:
    """The stage's loss on a fixed sample of its training examples, in eval mode.

    A step's training loss is measured on whichever batch that step drew, and batches differ
    in difficulty (a "yes" answer against a three-line caption), so a few steps' losses go up
    and down whatever the model learns. The same `n` examples (evenly spaced, so every kind of
    example is in), scored before and after training, say whether the stage learned. The mean
    is over micro-batch losses weighted by their example counts.
    """
    if not examples:
        return float("nan")
    sample = list(examples)[:: max(1, len(examples) // n)][:n]
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(sample), micro_batch_size):
        chunk = sample[start : start + micro_batch_size]
        batch = _to_device(collate(chunk), dist.device, dtype)
        with _autocast(dist.device, dtype):
            loss, _ = loss_fn(model, batch)
        total += float(loss.detach()) * len(chunk)
    model.train(was_training)
    return total / len(sample)


def save_stage(
    model: Any,
    processor: Any,
    family: Family,
    cfg: Config,
    stage: str,
    history: list[dict[str, Any]],
    dist: DistInfo,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write adapter, processor, effective config and metrics; return the run summary.

    `trainable_sha256` fingerprints the trained weights; a stage that resumes from this one
    records the same value as its `init_trainable_sha256` when it starts from exactly them
    (see `start_fingerprint`), so the run records show the chain of custody.
    """
    out = Path(cfg.train.output_dir)
    counts = summarize_trainable(model, family)
    summary = {
        "stage": stage,
        "init_from": cfg.train.init_from,
        "steps": len(history),
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        **loss_trend(history),
        "output_dir": str(out),
        "params_total": counts.total,
        "params_trainable": counts.trainable,
        "params_lora": counts.lora,
        "trainable_sha256": trainable_sha256(model),
        **(extra or {}),
    }
    if dist.world > 1:
        summary["world_size"] = dist.world
        summary["replica_sha256"] = replica_fingerprints(model)
        if len(set(summary["replica_sha256"])) != 1:
            raise RuntimeError(f"data-parallel replicas diverged: {summary['replica_sha256']}")
    if not dist.is_main:
        return summary
    out.mkdir(parents=True, exist_ok=True)
    if is_peft(model):
        model.save_pretrained(out / "adapter")
    else:
        save_projector(model, family, out / PROJECTOR_FILE)
    processor.save_pretrained(out / "processor")
    dump_config(cfg, out / "config.yaml")
    save_json(out / "history.json", history)
    save_json(out / "summary.json", summary)
    return summary


def trainable_sha256(model: Any) -> str:
    """sha256 over the exact bytes of every trainable tensor, in name order."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            digest.update(name.encode())
            digest.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def start_fingerprint(model: Any) -> dict[str, str]:
    """`init_trainable_sha256`: the trainable weights a stage starts from, before any step.

    A stage resumed from an adapter starts from exactly the saved weights, so this equals the
    previous stage's `trainable_sha256`; a fresh adapter (or one on top of an aligned
    projector) does not, which is how a silently ignored `init_from` shows up.
    """
    return {"init_trainable_sha256": trainable_sha256(model)}


def replica_fingerprints(model: Any) -> list[str]:
    """Every rank's `trainable_sha256`, gathered: equal when data parallelism kept them in sync."""
    mine = trainable_sha256(model)
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, mine)
    return [str(g) for g in gathered]


def effective_config(cfg: Config, dist: DistInfo) -> Config:
    """Adjust options that cannot work on this device, loudly rather than by crashing."""
    if dist.device.type == "cpu" and cfg.model.attn_implementation == "flash_attention_2":
        log.warning("flash_attention_2 needs CUDA: using sdpa")
        cfg.model.attn_implementation = "sdpa"
    cfg.model.dtype = str(effective_dtype(cfg, dist)).removeprefix("torch.")
    return cfg
