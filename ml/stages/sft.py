"""Caption alignment and instruction SFT: the same loop, different examples, answers-only loss.

`align` trains on captions phrased as "describe" instructions (LLaVA stage 1: usually
projector only, `lora.enabled: false`); `sft` trains on VQA conversations plus the captions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from ml.checkpoint import checkpointer_for
from ml.collator import ChatCollator, sequence_length_hint
from ml.config import Config
from ml.data import caption_examples, sft_examples
from ml.loop import LogFn, consumed_indices, fit, require_one_step, setup_distributed
from ml.losses import answer_only_sft_loss
from ml.mixing import SourceCounts, mixed_examples, seen_per_source
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


def sft_loss(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean token cross-entropy over answer tokens (the model shifts labels itself)."""
    out = model(**batch)
    return out.loss, {}


def _run(cfg: Config, stage: str, on_log: LogFn | None) -> dict[str, Any]:
    dist = setup_distributed()
    cfg = effective_config(cfg, dist)
    if not cfg.data.release and not cfg.data.extra:
        raise ValueError("data.release must name a release folder (or data.extra datasets)")
    release = Release(cfg.data.release, verify=cfg.data.verify) if cfg.data.release else None
    build = caption_examples if stage == "align" else sft_examples
    base, counts = None, None
    if release is not None:
        skipped: Counter = Counter()
        base = build(release, cfg.data.train_split, cfg.data, skipped)
        counts = SourceCounts(records=len(base) + sum(skipped.values()), skipped=skipped)
    examples, sources = mixed_examples(base, counts, cfg.data, cfg.train.seed)
    require_one_step(len(examples), cfg.train, dist.world, f"{stage} examples")
    ckpt = checkpointer_for(cfg.train, dist.rank, dist.world)
    seed_everything(cfg.train.seed)
    model, processor, family = load_for_training(
        cfg.model, cfg.lora, cfg.train.init_from, device=dist.device
    )
    started = start_fingerprint(model)
    lengths = [sequence_length_hint(processor, ex.messages) for ex in examples]
    collator = ChatCollator(processor, max_length=cfg.data.max_length)
    loss_fn = answer_only_sft_loss if cfg.train.answer_only_logits else sft_loss
    dtype = torch_dtype(cfg.model.dtype)

    def probe() -> float:
        return probe_loss(
            model, examples, collator, loss_fn, dist, dtype, cfg.train.micro_batch_size
        )

    if "probe_loss_before" in ckpt.meta:  # resumed: the untrained model is gone
        probe_before = ckpt.meta["probe_loss_before"]
    else:
        probe_before = ckpt.meta["probe_loss_before"] = probe()
    history = fit(
        model,
        examples,
        lengths,
        collator,
        loss_fn,
        cfg.train,
        dist,
        input_dtype=dtype,
        projector_marker=family.projector.rsplit(".", 1)[-1],
        on_log=on_log,
        checkpointer=ckpt,
    )
    seen = seen_per_source(examples, consumed_indices(lengths, cfg.train, dist, len(history)))
    for name, row in sources.items():
        row["seen"] = seen.get(name, 0)
    return save_stage(
        model,
        processor,
        family,
        cfg,
        stage,
        history,
        dist,
        extra={
            "release": release.name if release else None,
            "examples": len(examples),
            "sources": sources,
            "probe_loss_before": probe_before,
            "probe_loss_after": probe(),
            **started,
            **ckpt.summary(),
        },
    )


def run(cfg: Config, on_log: LogFn | None = print_log) -> dict[str, Any]:
    """Run the SFT stage end to end and return its summary."""
    return _run(cfg, "sft", on_log)


def run_align(cfg: Config, on_log: LogFn | None = print_log) -> dict[str, Any]:
    """Run the caption-alignment stage end to end and return its summary."""
    return _run(cfg, "align", on_log)
