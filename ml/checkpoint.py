"""Checkpoints that let a killed run continue where it stopped, on the same loss curve.

A checkpoint is a folder `OUTPUT_DIR/checkpoints/step-NNNNNNNN/` holding everything the next
step depends on:

- `trainable.safetensors`: every trainable tensor by name (the LoRA adapter, the projector and
  anything else that trains), in its fp32 master precision;
- `optimizer.pt`, `scheduler.pt` and `scaler.pt`: AdamW's moments, the LR schedule's position
  and the fp16 loss scale;
- `rng-RANK.pt`: Python's and torch's generators (CPU and CUDA), one file per rank, because
  dropout draws differ between data-parallel ranks;
- `state.json`, written last: the step, the data position (epoch and micro-batches consumed),
  tokens seen, the history so far, what the stage computed before training (`meta`: the probe
  loss, DPO's reference log-probs) and a fingerprint of the data and batch settings.

The folder is written under a temporary name and renamed when complete, so a run killed while
saving leaves either the previous checkpoint or the new one, never half of one. Resuming
refuses a checkpoint whose fingerprint differs from the run's: continuing another run's
optimizer state on different data would train something nobody asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
PREFIX = "step-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (another run's, or damaged)."""


def data_fingerprint(lengths: list[int] | tuple[int, ...], settings: dict[str, Any]) -> str:
    """sha256 over the examples' lengths and the settings that fix the data order."""
    digest = hashlib.sha256()
    digest.update(json.dumps([int(n) for n in lengths]).encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """Every generator training draws from (batch order has its own seeded `Random`)."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back where `rng_state` found them."""
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The trainable tensors by name, on the CPU."""
    return {
        name: p.detach().cpu().contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable_state(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable tensors into `model` in place; names must match exactly."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(tensors):
        missing = sorted(set(params) - set(tensors))[:3]
        extra = sorted(set(tensors) - set(params))[:3]
        raise CheckpointError(
            "the checkpoint's trainable tensors do not match the model's "
            f"(missing {missing}, unexpected {extra}): was it written with other lora settings?"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name].to(p.device, p.dtype))


@dataclass
class Resumed:
    """What `fit` continues from."""

    step: int
    micro_batches: int  # consumed by each rank
    tokens: int
    elapsed_s: float
    history: list[dict[str, Any]]
    path: Path


@dataclass
class Checkpointer:
    """Saves every `every` steps and at the end; on `resume`, reloads the newest checkpoint.

    `meta` is the stage's own state (values computed before training that a resumed run must
    reuse rather than recompute on the partly trained model); it is saved with each checkpoint
    and, when resuming, read back before the stage needs it.
    """

    output_dir: Path
    every: int = 0
    keep: int = 2
    resume: bool = False
    rank: int = 0
    world: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    _state: dict[str, Any] | None = None
    _path: Path | None = None
    save_seconds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        latest = self.latest()
        if latest is None:
            if self.resume:
                log.warning("resume: no checkpoint in %s; starting from step 0", self.root)
            return
        if not self.resume:
            raise CheckpointError(
                f"{self.root} holds checkpoints of an earlier run (newest {latest.name}): pass "
                "--resume (train.resume=true) to continue it, or choose another "
                "train.output_dir"
            )
        try:
            self._state = json.loads((latest / STATE_FILE).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{latest} cannot be read: {exc}") from exc
        self._path = latest
        self.meta = dict(self._state.get("meta") or {})

    @property
    def root(self) -> Path:
        return self.output_dir / CHECKPOINT_DIR

    @property
    def resuming(self) -> bool:
        """Whether a checkpoint was found and will be continued from."""
        return self._state is not None

    @property
    def resumed_step(self) -> int:
        """The step the run continued from (0 for a fresh run)."""
        return int(self._state["step"]) if self._state else 0

    def summary(self) -> dict[str, Any]:
        """For the run record: where it resumed, how many saves, what a save cost."""
        out: dict[str, Any] = {
            "resumed_from_step": self.resumed_step,
            "checkpoints_saved": len(self.save_seconds),
        }
        if self.save_seconds:
            mean = sum(self.save_seconds) / len(self.save_seconds)
            out["checkpoint_save_s_mean"] = round(mean, 4)
        return out

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary folders of an interrupted save are not)."""
        if not self.root.is_dir():
            return []
        found = [
            p
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith(PREFIX) and (p / STATE_FILE).is_file()
        ]
        return sorted(found, key=lambda p: int(p.name.removeprefix(PREFIX)))

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def due(self, step: int, total: int) -> bool:
        """Save after `step` (1-based)? Every `every` steps, and always after the last."""
        return step == total or (self.every > 0 and step % self.every == 0)

    # -- saving --------------------------------------------------------------------------------
    def save(
        self,
        step: int,
        model: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        state: dict[str, Any],
    ) -> Path:
        """Write the checkpoint of `step`; rank 0 writes all but the per-rank RNG files."""
        from safetensors.torch import save_file

        t0 = time.perf_counter()
        final = self.root / f"{PREFIX}{step:08d}"
        tmp = self.root / f".tmp-{PREFIX}{step:08d}"
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        _barrier(self.world)
        torch.save(rng_state(), tmp / f"rng-{self.rank}.pt")
        _barrier(self.world)
        if self.rank == 0:
            save_file(trainable_state(model), tmp / "trainable.safetensors")
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
            body = {**state, "step": step, "world": self.world, "meta": self.meta}
            (tmp / STATE_FILE).write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._prune(final)
        _barrier(self.world)
        self.save_seconds.append(time.perf_counter() - t0)
        return final

    def _prune(self, newest: Path) -> None:
        old = [p for p in self.checkpoints() if p != newest]
        for path in old[: max(0, len(old) - max(0, self.keep - 1))]:
            shutil.rmtree(path, ignore_errors=True)

    # -- resuming ------------------------------------------------------------------------------
    def restore(
        self,
        model: Any,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        fingerprint: str,
        total_steps: int,
    ) -> Resumed:
        """Load the newest checkpoint into the training objects (before any DDP wrapping)."""
        from safetensors.torch import load_file

        assert self._state is not None and self._path is not None
        state, path = self._state, self._path
        if state.get("fingerprint") != fingerprint:
            raise CheckpointError(
                f"{path} was written for other data or batch settings (examples, lengths, "
                "batch sizes, seed or world size differ): resuming it would not continue that "
                "run; choose another train.output_dir to start afresh"
            )
        if int(state.get("total_steps", -1)) != total_steps:
            raise CheckpointError(
                f"{path} belongs to a run of {state.get('total_steps')} steps, this one has "
                f"{total_steps}: the LR schedule would not continue"
            )
        if int(state.get("world", 1)) != self.world:
            raise CheckpointError(f"{path} was written by {state.get('world')} ranks, not "
                                  f"{self.world}")  # fmt: skip
        rng_file = path / f"rng-{self.rank}.pt"
        try:
            load_trainable_state(model, load_file(path / "trainable.safetensors"))
            optimizer.load_state_dict(_load(path / "optimizer.pt"))
            scheduler.load_state_dict(_load(path / "scheduler.pt"))
            scaler.load_state_dict(_load(path / "scaler.pt"))
            set_rng_state(_load(rng_file))
        except (OSError, RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path} is incomplete or damaged: {exc}") from exc
        log.info("resuming from %s (step %s of %s)", path, state["step"], total_steps)
        return Resumed(
            step=int(state["step"]),
            micro_batches=int(state["micro_batches"]),
            tokens=int(state.get("tokens", 0)),
            elapsed_s=float(state.get("elapsed_s", 0.0)),
            history=list(state.get("history") or []),
            path=path,
        )


def _load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _barrier(world: int) -> None:
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def checkpointer_for(train: Any, rank: int = 0, world: int = 1) -> Checkpointer:
    """The checkpointer a stage's `TrainConfig` asks for."""
    return Checkpointer(
        output_dir=Path(train.output_dir),
        every=int(train.save_every),
        keep=int(train.keep_checkpoints),
        resume=bool(train.resume),
        rank=rank,
        world=world,
    )
