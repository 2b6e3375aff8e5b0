"""The SFT stage runs from the CLI on tiny models, learns, and freezes the right parts."""

import json

import torch
from safetensors.torch import load_file


def test_sft_loss_goes_down(sft_run):
    history = json.loads((sft_run / "history.json").read_text())
    losses = [h["loss"] for h in history]
    assert len(losses) == 12
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.1, losses


def test_sft_saves_adapter_with_projector_and_lm_lora_only(sft_run, family):
    summary = json.loads((sft_run / "summary.json").read_text())
    assert summary["stage"] == "sft" and summary["params_lora"] > 0
    weights = load_file(sft_run / "adapter" / "adapter_model.safetensors")
    lora_keys = [k for k in weights if "lora_" in k]
    assert lora_keys and all("language_model" in k for k in lora_keys)
    projector = "multi_modal_projector" if family == "llava" else "merger"
    assert any(projector in k for k in weights), "the trained projector must ship with the adapter"
    assert not any(("vision_tower" in k or "visual.blocks" in k) for k in weights)
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert (sft_run / "processor" / "chat_template.jinja").is_file()
