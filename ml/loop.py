"""One readable optimisation loop shared by the stages (align, sft, dpo).

Stages differ only in their examples, collate function and loss; batching (length-grouped or
random), gradient accumulation, the LR schedule, data parallelism and saving live here once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ml.config import TrainConfig

log = logging.getLogger(__name__)

LossFn = Callable[[Any, dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]
LogFn = Callable[[dict[str, Any]], None]


@dataclass
class DistInfo:
    """Where this process sits in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> DistInfo:
    """Join a torchrun/accelerate job if launched by one (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=device)


def micro_batch_order(
    lengths: Sequence[int],
    micro_batch_size: int,
    seed: int,
    group_by_length: bool,
    megabatch_factor: int = 32,
) -> list[list[int]]:
    """Indices of one epoch, cut into micro-batches.

    With grouping, a shuffled epoch is cut into megabatches, each sorted by length and cut into
    micro-batches, and those are shuffled again: little padding, but no curriculum by length.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        mega = micro_batch_size * megabatch_factor
        grouped: list[int] = []
        for i in range(0, len(order), mega):
            chunk = sorted(order[i : i + mega], key=lambda j: -lengths[j])
            grouped.extend(chunk)
        order = grouped
    batches = [order[i : i + micro_batch_size] for i in range(0, len(order), micro_batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Multiplier on the base LR: linear warmup, then cosine/linear decay or constant."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if kind == "linear":
        return 1.0 - progress
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr_scheduler {kind!r}")


def build_optimizer(
    model: Any, train: TrainConfig, projector_marker: str | None, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; the projector may get its own LR."""
    main, proj = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if projector_marker and train.projector_lr and projector_marker in name:
            proj.append(p)
        else:
            main.append(p)
    groups = [{"params": main, "lr": train.lr}]
    if proj:
        groups.append({"params": proj, "lr": train.projector_lr})
    if not main and not proj:
        raise RuntimeError("nothing is trainable: check the lora / projector settings")
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, weight_decay=train.weight_decay, fused=fused)


def _to_device(batch: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict:
    """Move a batch; only image inputs take the model dtype (log-prob caches stay exact)."""
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
            if value.is_floating_point() and key.startswith("pixel_values"):
                value = value.to(dtype)
        out[key] = value
    return out


def require_one_step(n: int, train: TrainConfig, world: int, what: str = "examples") -> None:
    """Refuse `n` examples that cannot fill one optimizer step.

    `fit` drops an epoch's micro-batches that do not fill a whole step, so with fewer than one
    step's worth it would wait for a full step forever: a hung worker, not an error. Stages
    call this before loading the model, `fit` again before training.
    """
    per_step = train.micro_batch_size * world
    if not per_step or train.batch_size % per_step:
        return  # fit raises its own error for a batch that does not divide
    needed = train.batch_size // train.micro_batch_size  # micro-batches in one step, all ranks
    have = math.ceil(n / train.micro_batch_size)
    if have < needed:
        raise ValueError(
            f"{n} {what} make {have} micro-batch(es) of {train.micro_batch_size}, fewer than "
            f"one optimizer step needs ({needed}, train.batch_size={train.batch_size}); lower "
            "train.batch_size (or micro_batch_size), or train on more data"
        )


def fit(
    model: Any,
    examples: Sequence[Any],
    lengths: Sequence[int],
    collate: Callable[[list[Any]], dict[str, Any]],
    loss_fn: LossFn,
    train: TrainConfig,
    dist: DistInfo,
    input_dtype: torch.dtype,
    projector_marker: str | None = None,
    on_log: LogFn | None = None,
) -> list[dict[str, Any]]:
    """Train `model` in place and return the logged history.

    On CUDA with a half `input_dtype`, forward and backward run under autocast: frozen weights
    stay bf16, trainable ones are fp32 master weights (see `setup_trainable`) whose matmuls
    still run on bf16 tensor cores.
    """
    if not examples:
        raise ValueError("no training examples")
    per_step = train.micro_batch_size * dist.world
    if train.batch_size % per_step:
        raise ValueError(
            f"batch_size {train.batch_size} is not a multiple of micro_batch_size x world "
            f"({train.micro_batch_size} x {dist.world})"
        )
    accum = train.batch_size // per_step
    require_one_step(len(examples), train, dist.world)
    steps_per_epoch = max(1, len(examples) // train.batch_size)
    total = train.max_steps or max(1, math.ceil(train.epochs * steps_per_epoch))
    warmup = int(train.warmup_ratio * total)

    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [dist.device.index] if dist.device.type == "cuda" else None
        ddp_model = DistributedDataParallel(model, device_ids=device_ids)

    optimizer = build_optimizer(model, train, projector_marker, dist.device)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def micro_batches():
        epoch = 0
        while True:
            order = micro_batch_order(
                lengths, train.micro_batch_size, train.seed + epoch, train.group_by_length
            )
            usable = len(order) - len(order) % (dist.world * accum)
            for i in range(dist.rank, usable, dist.world):
                yield order[i]
            epoch += 1

    stream = micro_batches()
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    tokens_seen = 0
    casting = adapter_input_casting(model, enabled=not _autocast_enabled(dist.device, input_dtype))
    with casting:
        for step in range(total):
            factor = lr_factor(step, total, warmup, train.lr_scheduler)
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            step_loss = torch.zeros((), device=dist.device)  # on device: one sync per step
            stats_sum: dict[str, float] = {}
            for micro in range(accum):
                batch = collate([examples[i] for i in next(stream)])
                if "attention_mask" in batch:
                    tokens_seen += int(batch["attention_mask"].sum())
                batch = _to_device(batch, dist.device, input_dtype)
                sync = micro == accum - 1 or dist.world == 1
                no_sync = dist.world > 1 and not sync
                ctx = ddp_model.no_sync() if no_sync else contextlib.nullcontext()
                with ctx, _autocast(dist.device, input_dtype):
                    loss, stats = loss_fn(ddp_model, batch)
                    (loss / accum).backward()
                step_loss += loss.detach().float() / accum
                for k, v in stats.items():
                    stats_sum[k] = stats_sum.get(k, 0.0) + v / accum
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, train.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            record = {
                "step": step + 1,
                "total_steps": total,
                "loss": float(step_loss),
                "lr": optimizer.param_groups[0]["lr"],
                "grad_norm": float(grad_norm),
                "tokens": tokens_seen,
                "elapsed_s": round(time.perf_counter() - t0, 3),
                **stats_sum,
            }
            history.append(record)
            last = step + 1 == total
            if on_log and dist.is_main and ((step + 1) % train.log_every == 0 or last):
                on_log(record)
    return history


def _autocast_enabled(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cuda" and dtype in (torch.bfloat16, torch.float16)


def _autocast(device: torch.device, dtype: torch.dtype) -> Any:
    if _autocast_enabled(device, dtype):
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


@contextlib.contextmanager
def adapter_input_casting(model: Any, enabled: bool) -> Any:
    """Switch peft's cast of each adapter's input to the adapter's dtype, restored on exit.

    With fp32 adapter weights, peft upcasts every LoRA input to fp32 and the dropout runs on
    that copy, only for autocast to cast it back to bf16 for the matmul: three passes over the
    activations of every adapted linear. Under autocast the cast is redundant, so training
    turns it off; outside autocast (CPU, evaluation) it is needed and is left on.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    before = [getattr(m, "cast_input_dtype_enabled", True) for m in layers]
    for m in layers:
        m.cast_input_dtype_enabled = enabled
    try:
        yield
    finally:
        for m, value in zip(layers, before, strict=True):
            m.cast_input_dtype_enabled = value


def save_json(path: str | Path, data: Any) -> None:
    """Write JSON with a trailing newline (artefacts the platform reads)."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
