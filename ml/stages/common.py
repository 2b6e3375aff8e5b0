"""What every stage does around its loop: load, pick the device and dtype, save artefacts."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from ml.config import Config, dump_config
from ml.families import Family
from ml.loop import DistInfo, save_json
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
    """Write adapter, processor, effective config and metrics; return the run summary."""
    out = Path(cfg.train.output_dir)
    counts = summarize_trainable(model, family)
    summary = {
        "stage": stage,
        "steps": len(history),
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "output_dir": str(out),
        "params_total": counts.total,
        "params_trainable": counts.trainable,
        "params_lora": counts.lora,
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
