"""Loading a base model and processor from a local folder, and making the right parts trainable.

Freezing and LoRA placement follow the family table in `ml.families`: LoRA on the language
model's linears only (explicit names), vision tower frozen unless asked, projector trainable by
a flag. The projector is saved with the adapter (peft `modules_to_save`), so merging keeps it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ml.config import LoraSettings, ModelConfig
from ml.families import Family, family_for_model_type, get_submodule, lora_target_regex

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def torch_dtype(name: str) -> torch.dtype:
    """Map a config dtype name to torch, falling back to float32 where bf16 is unsupported."""
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def image_only_qwen_processor_class() -> type:
    """Qwen2.5-VL processor that accepts no video processor (that one needs torchvision)."""
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

        def save_pretrained(self, save_directory, **kwargs):
            # The base class insists on saving every attribute, the missing video one too.
            out = Path(save_directory)
            out.mkdir(parents=True, exist_ok=True)
            self.tokenizer.save_pretrained(out)
            self.image_processor.save_pretrained(out)
            if self.chat_template:
                (out / "chat_template.jinja").write_text(self.chat_template, encoding="utf-8")
            return [str(out)]

    return ImageOnlyQwen2_5_VLProcessor


def _is_qwen_vl_dir(path: Path) -> bool:
    for name, key in (
        ("config.json", "model_type"),
        ("preprocessor_config.json", "image_processor_type"),
    ):
        file = path / name
        if file.is_file():
            value = str(json.loads(file.read_text("utf-8")).get(key, ""))
            if value.startswith(("qwen2_5_vl", "qwen2_vl", "Qwen2VL")):
                return True
    return False


def load_processor(path: str | Path) -> Any:
    """`AutoProcessor` from a local folder, with an images-only fallback for Qwen without
    torchvision (CPU machines)."""
    from transformers import AutoProcessor

    path = Path(path)
    error: Exception | None = None
    try:
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        if hasattr(processor, "image_processor"):
            return processor
    except (ImportError, AttributeError, TypeError, ValueError, OSError) as exc:
        error = exc
    if not _is_qwen_vl_dir(path):
        raise error or ValueError(f"{path} holds no image processor")
    log.warning("AutoProcessor failed (%s); loading Qwen's processor for images only", error)
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, local_files_only=True)
    chat_template = getattr(tokenizer, "chat_template", None)
    template_file = path / "chat_template.jinja"
    if template_file.is_file():
        chat_template = template_file.read_text("utf-8")
    cls = image_only_qwen_processor_class()
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template)


def load_base_model(cfg: ModelConfig, device: torch.device | str | None = None) -> Any:
    """The base vision-language model from `cfg.path`, no hub access."""
    from transformers import AutoModelForImageTextToText

    if not cfg.path:
        raise ValueError("model.path must name a local checkpoint folder")
    if not Path(cfg.path).is_dir():
        raise FileNotFoundError(f"model.path {cfg.path!r} is not a folder (no hub downloads)")
    model = AutoModelForImageTextToText.from_pretrained(
        cfg.path,
        dtype=torch_dtype(cfg.dtype),
        attn_implementation=cfg.attn_implementation,
        local_files_only=True,
    )
    if device is not None:
        model.to(device)
    return model


def apply_liger(model: Any) -> bool:
    """Patch Liger kernels into `model` if the package is installed; report whether it was."""
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
    except ImportError:
        log.warning("model.liger is on but liger_kernel is not importable; continuing without")
        return False
    try:
        _apply_liger_kernel_to_instance(model=model)
    except Exception as exc:  # an unsupported architecture must not stop training
        log.warning("Liger kernels could not be applied: %s", exc)
        return False
    return True


def set_activation_checkpointing(model: Any, on: bool) -> None:
    """Turn activation checkpointing on (non-reentrant, works with frozen inputs) or off.

    transformers 5.2x renamed `gradient_checkpointing_*` to `activation_checkpointing_*`;
    GPU images may carry an older 5.x, so both spellings are handled.
    """
    kwargs = {"use_reentrant": False}
    if on:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def disable_kv_cache(model: Any) -> None:
    """No KV cache while training, on the top config and on the language model's own config.

    Setting only `model.config.use_cache` leaves `text_config.use_cache` on, so every training
    forward builds a DynamicCache: wasted memory, and under torch.compile a recompile per layer
    (seen on the H200 benchmark: dynamo hit its recompile limit on `cache.is_initialized`).
    """
    model.config.use_cache = False
    get_text_config = getattr(model.config, "get_text_config", None)
    text_cfg = get_text_config() if get_text_config else getattr(model.config, "text_config", None)
    if text_cfg is not None:
        text_cfg.use_cache = False


def enable_efficiency(model: Any, cfg: ModelConfig) -> None:
    """Gradient checkpointing and kernels; all of it is harmless on CPU."""
    disable_kv_cache(model)
    if cfg.gradient_checkpointing:
        set_activation_checkpointing(model, True)
    if cfg.liger:
        apply_liger(model)


def compile_lm_layers(model: Any, family: Family) -> int:
    """`torch.compile` every decoder layer of the language model in place; returns how many.

    Layers rather than the whole model: one graph shared by identical layers compiles once,
    and the vision tower and Python-side input preparation stay eager. Dynamic shapes from the
    start, because batch widths vary from step to step.
    """
    device = next(model.parameters()).device
    if device.type != "cuda":
        log.warning("model.compile_lm_layers needs CUDA; running eagerly")
        return 0
    layers = getattr(get_submodule(model, family.language_model), "layers", None)
    if layers is None:
        log.warning("no .layers in %s; not compiling", family.language_model)
        return 0
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


@dataclass
class TrainableSummary:
    """Counts of parameters, for logs and the FLOP model of the benchmark."""

    total: int
    trainable: int
    lora: int
    projector_trainable: bool
    vision_trainable: bool


def setup_trainable(model: Any, family: Family, lora: LoraSettings) -> Any:
    """Freeze everything, then add LoRA to the LM and unfreeze what the flags ask for.

    Returns the (possibly peft-wrapped) model.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    extra_modules = []
    if lora.train_projector:
        extra_modules.append(family.projector.rsplit(".", 1)[-1])
    if lora.train_vision_tower:
        extra_modules.append(family.vision_tower.rsplit(".", 1)[-1])
    if lora.enabled:
        from peft import LoraConfig, get_peft_model

        targets = lora_target_regex(family, lora.target_modules or None)
        peft_cfg = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=targets,
            modules_to_save=extra_modules or None,
            bias="none",
        )
        model = get_peft_model(model, peft_cfg)
    else:
        names = [family.projector] if lora.train_projector else []
        if lora.train_vision_tower:
            names.append(family.vision_tower)
        for name in names:
            for p in get_submodule(model, name).parameters():
                p.requires_grad_(True)
    upcast_trainable(model)
    if lora.train_vision_tower is False:
        # A projector nested inside the vision module (Qwen's merger) must stay trainable,
        # everything else in the tower frozen: check rather than assume.
        proj_params = {id(p) for p in get_submodule(model, family.projector).parameters()}
        for p in get_submodule(model, family.vision_tower).parameters():
            if id(p) not in proj_params and p.requires_grad:
                raise RuntimeError("vision tower parameters became trainable unexpectedly")
    return model


def upcast_trainable(model: Any) -> None:
    """fp32 master copies of what trains: bf16 cannot hold lr 5e-5 updates.

    The loop runs under autocast on GPU, so their matmuls still use bf16 tensor cores.
    """
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()


def summarize_trainable(model: Any, family: Family) -> TrainableSummary:
    """Count total, trainable and LoRA parameters."""
    total = trainable = lora_n = 0
    for name, p in model.named_parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
            if "lora_" in name:
                lora_n += p.numel()
    proj = any(p.requires_grad for p in get_submodule(model, family.projector).parameters())
    proj_ids = {id(p) for p in get_submodule(model, family.projector).parameters()}
    vis = any(
        p.requires_grad and id(p) not in proj_ids
        for p in get_submodule(model, family.vision_tower).parameters()
    )
    return TrainableSummary(total, trainable, lora_n, proj, vis)


def model_family(model: Any) -> Family:
    """The family of a (possibly peft-wrapped) model."""
    return family_for_model_type(model.config.model_type)


PROJECTOR_FILE = "projector.safetensors"


def is_peft(model: Any) -> bool:
    """Whether `model` is a peft wrapper."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def save_projector(model: Any, family: Family, path: Path) -> None:
    """Save only the projector's weights (a stage trained without LoRA)."""
    from safetensors.torch import save_file

    module = get_submodule(model, family.projector)
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, path)


def load_projector(model: Any, family: Family, path: Path) -> None:
    """Load projector weights saved by `save_projector` into a base model."""
    from safetensors.torch import load_file

    module = get_submodule(model, family.projector)
    state = load_file(path)
    dtype = next(module.parameters()).dtype
    module.load_state_dict({k: v.to(dtype) for k, v in state.items()})


def load_for_training(
    model_cfg: ModelConfig, lora: LoraSettings, init_from: str | None = None, device=None
) -> tuple[Any, Any, Family]:
    """Base model + processor, efficiency options, then LoRA (fresh, or resumed from a stage)."""
    processor = load_processor(model_cfg.path)
    model = load_base_model(model_cfg, device=device)
    family = model_family(model)
    enable_efficiency(model, model_cfg)
    if init_from:
        prev = Path(init_from)
        adapter_dir, projector_file = prev / "adapter", prev / PROJECTOR_FILE
        if not adapter_dir.is_dir() and not projector_file.is_file():
            raise FileNotFoundError(f"{init_from} has neither adapter/ nor {PROJECTOR_FILE}")
        if projector_file.is_file():  # align stage without LoRA: only the projector trained
            load_projector(model, family, projector_file)
        if adapter_dir.is_dir():
            from peft import PeftModel

            for p in model.parameters():
                p.requires_grad_(False)
            model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
            upcast_trainable(model)
        else:
            model = setup_trainable(model, family, lora)
    else:
        model = setup_trainable(model, family, lora)
    if model_cfg.compile_lm_layers:
        compile_lm_layers(model, family)
    return model, processor, family
