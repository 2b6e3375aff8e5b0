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

from ml.checkpoint import Checkpointer, data_fingerprint
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


class MicroBatchStream:
    """This rank's micro-batches, epoch after epoch, with a position that can be saved.

    An epoch's order depends only on the lengths, the seed and the epoch number, so the
    position (epoch, micro-batches taken in it) is all a checkpoint needs to continue the
    stream exactly.
    """

    def __init__(
        self, lengths: Sequence[int], train: TrainConfig, dist: DistInfo, accum: int
    ) -> None:
        self.lengths, self.train, self.dist, self.accum = lengths, train, dist, accum
        self.epoch, self.offset, self.taken = 0, 0, 0
        self._mine = self._epoch(0)

    def _epoch(self, epoch: int) -> list[list[int]]:
        order = micro_batch_order(
            self.lengths,
            self.train.micro_batch_size,
            self.train.seed + epoch,
            self.train.group_by_length,
        )
        usable = len(order) - len(order) % (self.dist.world * self.accum)
        return [order[i] for i in range(self.dist.rank, usable, self.dist.world)]

    def __iter__(self) -> MicroBatchStream:
        return self

    def __next__(self) -> list[int]:
        while self.offset >= len(self._mine):
            self.epoch += 1
            self.offset = 0
            self._mine = self._epoch(self.epoch)
        batch = self._mine[self.offset]
        self.offset += 1
        self.taken += 1
        return batch

    def skip(self, n: int) -> None:
        """Fast-forward over `n` micro-batches (index lists only: nothing is loaded)."""
        for _ in range(n):
            next(self)

    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset, "micro_batches": self.taken}


def consumed_indices(
    lengths: Sequence[int], train: TrainConfig, dist: DistInfo, steps: int
) -> list[int]:
    """The example indices this rank trained on in `steps` optimizer steps (for counts)."""
    accum = train.batch_size // (train.micro_batch_size * dist.world)
    stream = MicroBatchStream(lengths, train, dist, accum)
    return [i for _ in range(steps * accum) for i in next(stream)]


def grad_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler:
    """A loss scaler for float16 (whose gradients underflow without one); a no-op otherwise.

    bfloat16 has float32's exponent range and needs none.
    """
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


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
    checkpointer: Checkpointer | None = None,
) -> list[dict[str, Any]]:
    """Train `model` in place and return the logged history.

    On CUDA with a half `input_dtype`, forward and backward run under autocast: frozen weights
    stay bf16, trainable ones are fp32 master weights (see `setup_trainable`) whose matmuls
    still run on bf16 tensor cores. float16 adds a GradScaler. With a `checkpointer`, the
    state is saved every `train.save_every` steps and after the last, and a resumed run
    continues from the newest checkpoint with the same batches, LR and generators.
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

    optimizer = build_optimizer(model, train, projector_marker, dist.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, train.lr_scheduler)
    )
    scaler = grad_scaler(dist.device, input_dtype)
    stream = MicroBatchStream(lengths, train, dist, accum)
    fingerprint = data_fingerprint(
        list(lengths),
        {
            "n": len(examples),
            "batch_size": train.batch_size,
            "micro_batch_size": train.micro_batch_size,
            "seed": train.seed,
            "group_by_length": train.group_by_length,
            "world": dist.world,
        },
    )
    history: list[dict[str, Any]] = []
    tokens_seen, start, elapsed_before = 0, 0, 0.0
    if checkpointer is not None and checkpointer.resuming:
        # In place, before DDP wraps the model (it broadcasts rank 0's weights at wrapping).
        resumed = checkpointer.restore(model, optimizer, scheduler, scaler, fingerprint, total)
        stream.skip(resumed.micro_batches)
        start, tokens_seen = resumed.step, resumed.tokens
        history, elapsed_before = resumed.history, resumed.elapsed_s

    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [dist.device.index] if dist.device.type == "cuda" else None
        ddp_model = DistributedDataParallel(model, device_ids=device_ids)

    trainable = [p for p in model.parameters() if p.requires_grad]
    model.train()
    t0 = time.perf_counter()
    casting = adapter_input_casting(model, enabled=not _autocast_enabled(dist.device, input_dtype))
    with casting:
        for step in range(start, total):
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
                    scaler.scale(loss / accum).backward()
                step_loss += loss.detach().float() / accum
                for k, v in stats.items():
                    stats_sum[k] = stats_sum.get(k, 0.0) + v / accum
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, train.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)  # skips the step when float16 gradients overflowed
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            record = {
                "step": step + 1,
                "total_steps": total,
                "loss": float(step_loss),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens": tokens_seen,
                "elapsed_s": round(elapsed_before + time.perf_counter() - t0, 3),
                **stats_sum,
            }
            if scaler.is_enabled():
                record["loss_scale"] = float(scaler.get_scale())
            history.append(record)
            last = step + 1 == total
            if checkpointer is not None and checkpointer.due(step + 1, total):
                state = {
                    **stream.position(),
                    "total_steps": total,
                    "tokens": tokens_seen,
                    "elapsed_s": record["elapsed_s"],
                    "history": history,
                    "fingerprint": fingerprint,
                }
                checkpointer.save(step + 1, model, optimizer, scheduler, scaler, state)
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
