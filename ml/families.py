"""What differs between the supported vision-language model families, in one place.

Everything that depends on the architecture (module names for LoRA and freezing, the image
placeholder token) is looked up here, so stages and the collator stay family-agnostic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Family:
    """Static facts about one model family."""

    name: str
    model_types: tuple[str, ...]
    # Attribute paths (dotted, relative to the *ForConditionalGeneration model).
    vision_tower: str
    projector: str
    language_model: str
    # Linear layers inside the language model that LoRA adapts (explicit, never "all-linear").
    lora_targets: tuple[str, ...]
    # Name of the processor attribute holding the image placeholder token string.
    image_token_attr: str = "image_token"


LM_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

FAMILIES: dict[str, Family] = {
    "llava": Family(
        name="llava",
        model_types=("llava",),
        vision_tower="model.vision_tower",
        projector="model.multi_modal_projector",
        language_model="model.language_model",
        lora_targets=LM_LINEARS,
    ),
    "qwen2_5_vl": Family(
        name="qwen2_5_vl",
        model_types=("qwen2_5_vl", "qwen2_vl"),
        # Qwen's patch merger is the projector; it lives inside the visual module.
        vision_tower="model.visual",
        projector="model.visual.merger",
        language_model="model.language_model",
        lora_targets=LM_LINEARS,
    ),
    "idefics3": Family(
        name="idefics3",
        model_types=("idefics3",),
        vision_tower="model.vision_model",
        projector="model.connector",
        language_model="model.text_model",
        lora_targets=LM_LINEARS,
    ),
}


def family_for_model_type(model_type: str) -> Family:
    """Find the family of a transformers `config.model_type`."""
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    raise ValueError(f"unsupported model_type {model_type!r}; known: {sorted(FAMILIES)}")


def get_submodule(model: torch.nn.Module, dotted: str) -> torch.nn.Module:
    """Resolve a dotted path, looking through a peft wrapper if there is one."""
    base = model
    # peft: PeftModel.base_model (LoraModel).model is the original model.
    if hasattr(base, "peft_config") and hasattr(base, "get_base_model"):
        base = base.get_base_model()
    return base.get_submodule(dotted)


def lora_target_regex(family: Family, names: list[str] | tuple[str, ...] | None = None) -> str:
    """A regex for peft's `target_modules` that matches the LM's linears and nothing else.

    A plain list of names would also match same-named layers in the vision tower
    (Qwen's ViT has `q_proj`-style names in some versions), so the path is anchored.
    """
    alternatives = "|".join(re.escape(n) for n in (names or family.lora_targets))
    prefix = re.escape(family.language_model)
    return rf"^{prefix}\..*\.({alternatives})$"
