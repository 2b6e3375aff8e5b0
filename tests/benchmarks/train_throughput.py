"""LoRA SFT throughput of full-size vision-language models, each efficiency option on and off.

Builds randomly initialised models of the LLaVA-1.5-7B shape (CLIP ViT-L/14-336 + a
Mistral-7B language model, as LLaVA-Med v1.5 / SkinVL) and the Qwen2.5-VL-3B shape directly
on the GPU in bf16 (no weights needed), applies LoRA at SkinVL's settings through
`ml.modeling.setup_trainable` (rank 128, alpha 64, dropout 0.05, projector trainable), and runs
`ml.loop.fit` - the training loop the stages use - for a few steps at lr 5e-5, global batch 16,
max length 2048, on synthetic image+text samples whose lengths follow a VQA/caption mix.

Each row prints as soon as its configuration finishes; a failing or out-of-memory configuration
is recorded and the next one runs. One table is printed at the end, and `--out` writes JSON.

    python tests/benchmarks/train_throughput.py --out bench.json   # GPU: < 8 min on one H100
    python tests/benchmarks/train_throughput.py --smoke            # CPU: tiny models, seconds

Needs only torch, transformers and peft (plus the `ml` package from this checkout).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import platform
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ml.config import LoraSettings, TrainConfig
from ml.families import FAMILIES, Family, get_submodule
from ml.loop import DistInfo, fit
from ml.losses import answer_only_sft_loss
from ml.modeling import (
    apply_liger,
    compile_lm_layers,
    disable_kv_cache,
    set_activation_checkpointing,
    setup_trainable,
)

GLOBAL_BATCH = 16
MAX_LENGTH = 2048
LR = 5e-5
LORA_R, LORA_ALPHA = 128, 64

# Dense bf16 tensor-core peaks (no sparsity) from the vendors' datasheets, by device name.
PEAKS_TFLOPS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("H800", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
]

FLOP_FORMULA = (
    "MFU counts model FLOPs on real (non-pad) tokens, per sample of length T (image tokens "
    "included): frozen LM linears (incl. lm_head) 4*N_frozen*T (2 fwd + 2 input-grad, no "
    "weight-grad); LoRA 6*N_lora*T; causal attention 3 * 2*T^2*d*L (fwd + 2x bwd); frozen "
    "vision tower forward only 2*N_vis*P + attention 4*P^2*d_v per layer (Qwen window layers "
    "use the window size); trainable projector 6*N_proj per projector input token. Activation "
    "recomputation is not counted (MFU, not HFU). Peak: dense bf16 of the card. Rows with "
    "answer-only logits are not credited the lm_head FLOPs of any non-answer token (4*V*d per "
    "token), though positions another row of the micro-batch needs are still computed."
)


# --------------------------------------------------------------------------- model shapes


def llava_7b_config():
    """LLaVA-1.5 layout with LLaVA-Med v1.5's Mistral-7B LM (SkinVL's base)."""
    from transformers import LlavaConfig

    return LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "image_size": 336,
            "patch_size": 14,
            "projection_dim": 768,
            "hidden_act": "quick_gelu",
        },
        text_config={
            "model_type": "mistral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "vocab_size": 32064,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "sliding_window": None,  # Mistral-7B-Instruct-v0.2, LLaVA-Med v1.5's base, has none
            "pad_token_id": 32001,
        },
        image_token_id=32000,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=576,
        projector_hidden_act="gelu",
    )


def qwen25vl_3b_config():
    """Qwen2.5-VL-3B-Instruct's published shape."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        vision_config={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "hidden_act": "silu",
        },
        text_config={
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "vocab_size": 151936,
            "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [16, 24, 24],
            },
            "tie_word_embeddings": True,
        },
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=True,
    )


def tiny_config(family: str):
    """The tests' tiny config of the family, for the CPU smoke path."""
    from ml.tiny import tiny_model_config, train_tokenizer

    return tiny_model_config(family, train_tokenizer([]))


def build_model(family: str, full: bool, device: torch.device, dtype: torch.dtype, attn: str):
    """Randomly initialised model allocated straight on `device`."""
    from transformers import AutoModelForImageTextToText

    if full:
        config = llava_7b_config() if family == "llava" else qwen25vl_3b_config()
    else:
        config = tiny_config(family)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(
            config, dtype=dtype, attn_implementation=attn
        )
    disable_kv_cache(model)
    return model


def set_attention(model: Any, impl: str) -> str:
    """Switch attention implementation in place; returns what the LM reports afterwards."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "set_attn_implementation"):
        base.set_attn_implementation(impl)
    else:  # older transformers: set it on every (sub)config
        for cfg in [
            base.config,
            *[getattr(base.config, k) for k in ("text_config", "vision_config")],
        ]:
            if cfg is not None:
                cfg._attn_implementation = impl
    text_cfg = getattr(base.config, "text_config", base.config)
    return str(getattr(text_cfg, "_attn_implementation", impl))


# --------------------------------------------------------------------------- synthetic data


@dataclass
class Sample:
    """Lengths of one synthetic example (text around one image)."""

    prompt: int  # template + question tokens after the image
    answer: int  # answer tokens (labelled) incl. end-of-turn
    grid: tuple[int, int] = (24, 24)  # image patch grid (Qwen: before the 2x2 merge)

    def image_tokens(self, family: str) -> int:
        if family == "llava":
            return 576 if self.grid == (24, 24) else (self.grid[0] * self.grid[1])
        return (self.grid[0] // 2) * (self.grid[1] // 2)

    def length(self, family: str) -> int:
        return 1 + 4 + self.image_tokens(family) + 2 + self.prompt + self.answer


QWEN_GRIDS = [(32, 32), (32, 44), (40, 30), (24, 36), (36, 48), (28, 28)]


def make_samples(family: str, n: int, full: bool, seed: int = 0) -> list[Sample]:
    """A VQA/caption mix: mostly short answers, some long captions (as MM-Skin)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.7:  # VQA: question, short or medium answer
            prompt, answer = rng.randint(12, 60), int(min(200, rng.lognormvariate(2.8, 0.8)))
        else:  # caption as a "describe" instruction
            prompt, answer = rng.randint(10, 16), rng.randint(40, 320)
        answer = max(answer, 2)
        if not full:
            prompt, answer = max(2, prompt // 8), max(2, answer // 8)
            grid = (2, 2) if family == "llava" else (4, 4)
        else:
            grid = (24, 24) if family == "llava" else rng.choice(QWEN_GRIDS)
        out.append(Sample(prompt, answer, grid))
    return out


class SyntheticCollator:
    """Builds model inputs the way `ml.collator.ChatCollator` lays them out, from lengths."""

    def __init__(self, family: str, model: Any, vocab: int, image_size: int, with_mm_types: bool):
        self.family = family
        self.vocab = vocab
        self.image_size = image_size
        self.with_mm_types = with_mm_types
        cfg = model.config
        self.image_id = cfg.image_token_id
        self.start_id = getattr(cfg, "vision_start_token_id", None)
        self.end_id = getattr(cfg, "vision_end_token_id", None)
        text_cfg = getattr(cfg, "text_config", cfg)
        self.pad_id = getattr(text_cfg, "pad_token_id", None) or 0
        if family == "qwen2_5_vl":
            vc = cfg.vision_config
            self.patch_dim = 3 * vc.temporal_patch_size * vc.patch_size**2
        self._pixels: dict[Any, torch.Tensor] = {}
        self.gen = torch.Generator().manual_seed(0)

    def _text(self, n: int) -> torch.Tensor:
        low = 1000 if self.vocab > 5000 else 20
        return torch.randint(low, min(self.vocab, 30000), (n,), generator=self.gen)

    def _pixels_for(self, key: Any, shape: tuple[int, ...]) -> torch.Tensor:
        if key not in self._pixels:  # reuse: random pixels cost more than the real loader would
            self._pixels[key] = torch.randn(shape, generator=self.gen)
        return self._pixels[key]

    def __call__(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        seqs, labels = [], []
        for s in samples:
            n_img = s.image_tokens(self.family)
            head = self._text(5)
            start = torch.tensor([self.start_id if self.start_id is not None else 1])
            img = torch.full((n_img,), self.image_id)
            end = torch.tensor([self.end_id if self.end_id is not None else 2])
            prompt = self._text(s.prompt + 1)
            answer = self._text(s.answer)
            ids = torch.cat([head, start, img, end, prompt, answer])[:MAX_LENGTH]
            lab = torch.full_like(ids, -100)
            lab[-min(s.answer, len(ids)) :] = ids[-min(s.answer, len(ids)) :]
            seqs.append(ids)
            labels.append(lab)
        width = max(len(x) for x in seqs)
        bsz = len(seqs)
        input_ids = torch.full((bsz, width), self.pad_id, dtype=torch.long)
        label_t = torch.full((bsz, width), -100, dtype=torch.long)
        attn = torch.zeros((bsz, width), dtype=torch.long)
        for i, (ids, lab) in enumerate(zip(seqs, labels, strict=True)):
            input_ids[i, : len(ids)] = ids
            label_t[i, : len(ids)] = lab
            attn[i, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attn, "labels": label_t}
        if self.family == "llava":
            size = self.image_size
            batch["pixel_values"] = self._pixels_for(("llava", bsz), (bsz, 3, size, size)).clone()
        else:
            patches = sum(s.grid[0] * s.grid[1] for s in samples)
            flat = self._pixels_for(("qwen", "max"), (MAX_LENGTH * 4 * bsz, self.patch_dim))
            batch["pixel_values"] = flat[:patches].clone()
            batch["image_grid_thw"] = torch.tensor([[1, s.grid[0], s.grid[1]] for s in samples])
            if self.with_mm_types:
                batch["mm_token_type_ids"] = (input_ids == self.image_id).long()
        return batch


# --------------------------------------------------------------------------- FLOPs


@dataclass
class FlopModel:
    """Parameter counts the FLOP formula needs (see FLOP_FORMULA)."""

    family: str
    lm_frozen: int
    lora: int
    lm_layers: int
    lm_hidden: int
    vis_params: int
    vis_layers: int
    vis_hidden: int
    proj_params: int
    window_patches: int = 0
    full_att_layers: int = 0
    lm_head: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def sample_flops(self, s: Sample, answer_only: bool = False) -> float:
        t = s.length(self.family)
        lm = 4 * self.lm_frozen * t + 6 * self.lora * t
        if answer_only:  # lm_head runs (at most) on the answer tokens
            lm -= 4 * self.lm_head * (t - s.answer)
        lm += 3 * 2 * t * t * self.lm_hidden * self.lm_layers
        if self.family == "llava":
            p = s.grid[0] * s.grid[1] + 1  # patches + CLS
            vis = 2 * self.vis_params * p + 4 * p * p * self.vis_hidden * self.vis_layers
            proj = 6 * self.proj_params * s.image_tokens(self.family)
        else:
            p = s.grid[0] * s.grid[1]
            win = min(p, self.window_patches) if self.window_patches else p
            att = self.full_att_layers * p * p + (self.vis_layers - self.full_att_layers) * p * win
            vis = 2 * self.vis_params * p + 4 * att * self.vis_hidden
            proj = 6 * self.proj_params * s.image_tokens(self.family)
        return float(lm + vis + proj)


def flop_model(model: Any, family: Family) -> FlopModel:
    """Count frozen LM matmul weights, LoRA, vision and projector parameters."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    lm = get_submodule(model, family.language_model)
    proj_ids = {id(p) for p in get_submodule(model, family.projector).parameters()}
    lm_frozen = lora = 0
    for name, p in lm.named_parameters():
        if "lora_" in name:
            lora += p.numel()
        elif p.dim() == 2 and "embed_tokens" not in name:
            lm_frozen += p.numel()
    lm_head = base.get_output_embeddings()
    lm_frozen += lm_head.weight.numel()
    vis = sum(
        p.numel()
        for p in get_submodule(model, family.vision_tower).parameters()
        if id(p) not in proj_ids
    )
    # modules_to_save keeps a frozen original and a trainable copy: count one of them.
    proj = sum(
        p.numel()
        for n, p in get_submodule(model, family.projector).named_parameters()
        if "original_module" not in n
    )
    cfg = base.config
    text_cfg = getattr(cfg, "text_config", cfg)
    vc = cfg.vision_config
    head_dim = getattr(text_cfg, "head_dim", None) or (
        text_cfg.hidden_size // text_cfg.num_attention_heads
    )
    fm = FlopModel(
        family=family.name,
        lm_frozen=lm_frozen,
        lora=lora,
        lm_layers=text_cfg.num_hidden_layers,
        lm_hidden=text_cfg.num_attention_heads * head_dim,
        vis_params=vis,
        vis_layers=getattr(vc, "num_hidden_layers", None) or getattr(vc, "depth", 0),
        vis_hidden=vc.hidden_size,
        proj_params=proj,
        lm_head=lm_head.weight.numel(),
    )
    if family.name == "qwen2_5_vl":
        fm.window_patches = (vc.window_size // vc.patch_size) ** 2
        fm.full_att_layers = len(vc.fullatt_block_indexes)
    return fm


def card_peak() -> tuple[str, float | None]:
    """Device name and its dense bf16 peak in FLOP/s (None when unknown or CPU)."""
    if not torch.cuda.is_available():
        return f"CPU ({platform.processor() or platform.machine()})", None
    name = torch.cuda.get_device_name(0)
    for key, tflops in PEAKS_TFLOPS:
        if key in name:
            return name, tflops * 1e12
    return name, None


def matmul_ceiling(device: torch.device) -> float | None:
    """Measured bf16 8192^3 matmul rate, a practical ceiling next to the datasheet peak."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - t)


# --------------------------------------------------------------------------- the runs


@dataclass
class Variant:
    """One efficiency setting to measure."""

    name: str
    attn: str = "sdpa"
    ckpt: bool = True
    group: bool = True
    liger: bool = False
    micro: int = GLOBAL_BATCH
    answer_logits: bool = False  # ml.losses.answer_only_sft_loss
    mask_free: bool = False  # ml.losses.drop_redundant_padding_mask (answer-only rows only)
    dropout: float = 0.05  # LoRA dropout; SkinVL's scripts use 0.05
    compile: bool = False  # ml.modeling.compile_lm_layers (irreversible: the model is rebuilt)

    @property
    def irreversible(self) -> bool:
        return self.compile or self.liger


def variants(liger_ok: bool, full: bool) -> list[Variant]:
    """Everything on, then each option turned off (or on, for Liger) once."""
    out = [
        Variant("all_on (sdpa+ckpt+group)"),
        Variant("eager attention", attn="eager"),
        Variant("no ckpt (micro 4)", ckpt=False, micro=4),
        Variant("no length grouping", group=False),
    ]
    if full:  # the largest micro-batch that may fit without checkpointing; OOM is reported
        out.insert(3, Variant("no ckpt (micro 8)", ckpt=False, micro=8))
    if liger_ok:
        out.append(Variant("+ liger kernels", liger=True))
    return out


def mfu_variants(liger_ok: bool) -> list[Variant]:
    """The route to higher MFU for the 7B shape, one change at a time (fits an 80 GB card).

    The first row is SkinVL's recipe with the plain loss over full logits; every later row
    keeps rank 128, alpha 64, lr 5e-5, global batch 16 and max length 2048.
    """
    ans = {"ckpt": False, "micro": 8, "answer_logits": True}
    out = [
        Variant("all_on (sdpa+ckpt+group)"),
        Variant("no ckpt (micro 8) + answer-only logits", **ans),
        Variant("no ckpt (micro 8) + answer-only logits + dropout 0", **ans, dropout=0.0),
        Variant(
            "no ckpt (micro 8) + answer-only + dropout 0 + mask-free", **ans, dropout=0.0,
            mask_free=True,
        ),
        Variant(
            "no ckpt (micro 8) + answer-only + dropout 0 + mask-free + compiled LM layers",
            **ans, dropout=0.0, mask_free=True, compile=True,
        ),
    ]  # fmt: skip
    if liger_ok:
        out.append(
            Variant(
                "no ckpt (micro 8) + answer-only + dropout 0 + mask-free + liger",
                **ans,
                dropout=0.0,
                mask_free=True,
                liger=True,
            )
        )
    return out


def set_lora_dropout(model: Any, p: float) -> None:
    """Change every LoRA dropout in place (p=0 swaps in Identity, as peft does at creation)."""
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if isinstance(drops, torch.nn.ModuleDict):
            for key in list(drops.keys()):
                drops[key] = torch.nn.Dropout(p) if p > 0 else torch.nn.Identity()


def liger_importable() -> bool:
    try:
        import liger_kernel.transformers  # noqa: F401
    except ImportError:
        return False
    return True


def measure(
    model: Any,
    family: Family,
    variant: Variant,
    samples: list[Sample],
    collate: SyntheticCollator,
    fm: FlopModel,
    dist: DistInfo,
    dtype: torch.dtype,
    warmup: int,
    steps: int,
    peak: float | None,
) -> dict[str, Any]:
    """Run `warmup + steps` optimizer steps of `ml.loop.fit`; rates over the last `steps`."""
    attn = set_attention(model, variant.attn)
    set_lora_dropout(model, variant.dropout)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    set_activation_checkpointing(base, variant.ckpt)
    if variant.compile:
        compiled = compile_lm_layers(model, family)
        if not compiled:
            raise RuntimeError("compile_lm_layers compiled nothing (CPU?)")
        warmup += 1  # the first steps compile forward and backward
    train = TrainConfig(
        lr=LR,
        batch_size=GLOBAL_BATCH,
        micro_batch_size=variant.micro,
        max_steps=warmup + steps,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        group_by_length=variant.group,
        seed=0,
        log_every=1,
    )
    lengths = [s.length(fm.family) for s in samples]
    seen: list[list[Sample]] = []

    def collate_and_record(batch_samples: list[Sample]) -> dict[str, torch.Tensor]:
        seen.append(batch_samples)
        return collate(batch_samples)

    if dist.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    history = fit(
        model,
        samples,
        lengths,
        collate_and_record,
        (
            partial(answer_only_sft_loss, mask_free=variant.mask_free)
            if variant.answer_logits
            else (lambda m, b: (m(**b).loss, {}))
        ),
        train,
        dist,
        input_dtype=dtype,
        projector_marker=None,
    )
    accum = GLOBAL_BATCH // variant.micro
    timed = seen[warmup * accum :]
    t0 = history[warmup - 1]["elapsed_s"] if warmup else 0.0
    seconds = history[-1]["elapsed_s"] - t0
    real_tokens = sum(s.length(fm.family) for b in timed for s in b)
    padded_tokens = sum(len(b) * max(s.length(fm.family) for s in b) for b in timed)
    flops = sum(fm.sample_flops(s, variant.answer_logits) for b in timed for s in b)
    n_samples = sum(len(b) for b in timed)
    mem = torch.cuda.max_memory_allocated() / 2**30 if dist.device.type == "cuda" else None
    losses = [h["loss"] for h in history]
    return {
        "status": "ok",
        "attn_effective": attn,
        "micro_x_accum": f"{variant.micro}x{accum}",
        "lora_dropout": variant.dropout,
        "step_s": seconds / steps,
        "tokens_per_s": real_tokens / seconds,
        "samples_per_s": n_samples / seconds,
        "padding_pct": 100.0 * (1 - real_tokens / padded_tokens),
        "tflops": flops / seconds / 1e12,
        "mfu_pct": 100.0 * flops / seconds / peak if peak else None,
        "peak_mem_gib": mem,
        "loss_first_last": [losses[0], losses[-1]],
        "finite": all(math.isfinite(x) for x in losses),
    }


@dataclass
class Built:
    """A LoRA-wrapped model with its FLOP counts, data and collator."""

    model: Any
    base: Any
    fm: FlopModel
    collate: SyntheticCollator
    samples: list[Sample]
    info: dict[str, Any]

    @classmethod
    def make(cls, fam_name: str, family: Family, full: bool, device, dtype, args) -> Built:
        t0 = time.perf_counter()
        model = build_model(fam_name, full, device, dtype, "sdpa")
        lora = LoraSettings(r=LORA_R if full else 8, alpha=LORA_ALPHA if full else 16, dropout=0.05)
        model = setup_trainable(model, family, lora)
        fm = flop_model(model, family)
        base = model.get_base_model()
        accepts = inspect.signature(base.forward).parameters
        text_cfg = getattr(base.config, "text_config", base.config)
        collate = SyntheticCollator(
            fam_name,
            base,
            vocab=text_cfg.vocab_size,
            image_size=getattr(base.config.vision_config, "image_size", 0),
            with_mm_types="mm_token_type_ids" in accepts,
        )
        samples = make_samples(fam_name, GLOBAL_BATCH * (args.warmup + args.steps + 1), full)
        info = {
            "build_s": round(time.perf_counter() - t0, 1),
            "lm_frozen_params": fm.lm_frozen,
            "lora_params": fm.lora,
            "vision_params": fm.vis_params,
            "projector_params": fm.proj_params,
            "mean_len": sum(s.length(fam_name) for s in samples) / len(samples),
        }
        return cls(model, base, fm, collate, samples, info)

    def rebuild(self, fam_name: str, family: Family, full: bool, device, dtype, args) -> Built:
        """A fresh model after an irreversible option; the old one is freed first."""
        self.model = self.base = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        torch._dynamo.reset()
        return Built.make(fam_name, family, full, device, dtype, args)


def profile_step(built: Built, family: Family, variant: Variant, dist: DistInfo, dtype) -> None:
    """Print where one optimizer step of `variant` spends its time, by op (GPU and CPU)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if dist.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        measure(
            built.model, family, variant, built.samples, built.collate, built.fm, dist, dtype,
            warmup=0, steps=1, peak=None,
        )  # fmt: skip
    device_key = "self_cuda_time_total" if dist.device.type == "cuda" else "self_cpu_time_total"
    print(f"\n### profile: {variant.name} (sorted by {device_key})\n", flush=True)
    print(prof.key_averages().table(sort_by=device_key, row_limit=25), flush=True)
    print("\n### profile: by CPU time\n", flush=True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20), flush=True)


def fmt_row(r: dict[str, Any]) -> str:
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    if r.get("status") != "ok":
        return f"| {r['model']} | {r['variant']} | {r.get('status')} | | | | | | | |"
    return (
        f"| {r['model']} | {r['variant']} | {r['micro_x_accum']} | {f(r['step_s'], '.2f')} | "
        f"{f(r['tokens_per_s'], ',.0f')} | {f(r['samples_per_s'], '.2f')} | "
        f"{f(r['padding_pct'], '.1f')} | {f(r['tflops'], '.1f')} | {f(r['mfu_pct'], '.1f')} | "
        f"{f(r['peak_mem_gib'], '.1f')} |"
    )


HEADER = (
    "| model | variant | micro x accum | s/step | tokens/s | samples/s | pad % | TFLOP/s | "
    "MFU % | peak GiB |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models (CPU-friendly)")
    parser.add_argument("--out", help="write all results as JSON here")
    parser.add_argument("--models", default="llava,qwen2_5_vl")
    parser.add_argument("--warmup", type=int, help="untimed steps (default 2; smoke 1)")
    parser.add_argument("--steps", type=int, help="timed steps (default 5; smoke 1)")
    parser.add_argument(
        "--full-shapes", action="store_true", help="full-size shapes and data even without CUDA"
    )
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting new work")
    parser.add_argument(
        "--suite",
        choices=["options", "mfu"],
        default="options",
        help="options: each efficiency option on/off; mfu: the steps towards the MFU target",
    )
    parser.add_argument("--rows", help="comma-separated row numbers of the suite to run (0-based)")
    parser.add_argument(
        "--profile", action="store_true", help="after each model's rows, profile one step"
    )
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    cuda = torch.cuda.is_available()
    full = (cuda or args.full_shapes) and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda and full else torch.float32
    dist = DistInfo(device=device)
    if args.warmup is None:
        args.warmup = 2 if full else 1
    if args.steps is None:
        args.steps = 5 if full else 1
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    name, peak = card_peak()
    import peft
    import transformers

    env = {
        "device": name,
        "peak_tflops": peak / 1e12 if peak else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "full_size": full,
    }
    ceiling = matmul_ceiling(device)
    env["matmul_bf16_tflops_measured"] = round(ceiling / 1e12, 1) if ceiling else None
    print(json.dumps(env), flush=True)
    print(FLOP_FORMULA, flush=True)
    liger_ok = liger_importable()
    rows: list[dict[str, Any]] = []
    shapes = {"llava": "LLaVA-1.5-7B (Mistral-7B LM)", "qwen2_5_vl": "Qwen2.5-VL-3B"}
    if not full:
        shapes = {k: f"tiny {k}" for k in shapes}
    for fam_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        label = shapes[fam_name]
        if time.perf_counter() - t_start > args.budget_s - 90:
            rows.append({"model": label, "variant": "*", "status": "skipped: time budget"})
            print(fmt_row(rows[-1]), flush=True)
            continue
        family = FAMILIES[fam_name]
        try:
            built = Built.make(fam_name, family, full, device, dtype, args)
        except Exception as exc:
            rows.append({"model": label, "variant": "build", "status": f"error: {exc!r}"[:200]})
            traceback.print_exc()
            print(fmt_row(rows[-1]), flush=True)
            gc.collect()
            continue
        print(json.dumps({"model": label, **built.info}), flush=True)
        print(HEADER, flush=True)
        chosen = mfu_variants(liger_ok) if args.suite == "mfu" else variants(liger_ok, full)
        if args.rows:
            chosen = [chosen[int(i)] for i in args.rows.split(",") if int(i) < len(chosen)]
        if not cuda:
            chosen = [v for v in chosen if not v.compile]
        dirty = False  # an irreversible option (compile, Liger) was applied to `built`
        for variant in chosen:
            if time.perf_counter() - t_start > args.budget_s:
                rows.append({"model": label, "variant": variant.name, "status": "skipped: time"})
                print(fmt_row(rows[-1]), flush=True)
                continue
            row = {"model": label, "variant": variant.name}
            try:
                if dirty:
                    built = built.rebuild(fam_name, family, full, device, dtype, args)
                    dirty = False
                dirty = variant.irreversible
                if variant.liger and not apply_liger(built.base):
                    raise RuntimeError("liger kernels could not be applied")
                row.update(
                    measure(
                        built.model,
                        family,
                        variant,
                        built.samples,
                        built.collate,
                        built.fm,
                        dist,
                        dtype,
                        args.warmup,
                        args.steps,
                        peak,
                    )
                )
            except torch.cuda.OutOfMemoryError:
                row["status"] = "OOM"
            except Exception as exc:
                row["status"] = f"error: {exc!r}"[:200]
                traceback.print_exc()
            built.model.zero_grad(set_to_none=True)
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            rows.append(row)
            print(fmt_row(row), flush=True)
            if args.out:  # partial results survive a timeout
                Path(args.out).write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
        if args.profile and not dirty and chosen:
            try:
                profile_step(built, family, chosen[-1], dist, dtype)
            except Exception:
                traceback.print_exc()
        del built
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    total = time.perf_counter() - t_start
    print(f"\n## LoRA SFT throughput on {name} ({env['date']}, {total:.0f} s total)\n")
    print(
        f"torch {env['torch']}, transformers {env['transformers']}, peft {env['peft']}; "
        f"global batch {GLOBAL_BATCH}, LoRA r={LORA_R if full else 8} "
        f"alpha={LORA_ALPHA if full else 16} dropout 0.05 (0 where the row says so) on the "
        f"LM linears, "
        f"projector trainable, lr {LR}, max length {MAX_LENGTH}, {str(dtype)[6:]}; "
        f"{args.warmup} warm-up (+1 when compiling) + {args.steps} timed steps. Dense bf16 peak "
        f"{env['peak_tflops']} TFLOP/s; measured 8192^3 bf16 matmul "
        f"{env['matmul_bf16_tflops_measured']} TFLOP/s. Liger: "
        f"{'importable' if liger_ok else 'not installed (rows skipped)'}.\n"
    )
    print(HEADER)
    for r in rows:
        print(fmt_row(r))
    print("\n" + FLOP_FORMULA)
    if args.out:
        Path(args.out).write_text(
            json.dumps({"env": env, "formula": FLOP_FORMULA, "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
