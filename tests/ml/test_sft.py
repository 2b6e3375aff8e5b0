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


def test_answer_only_logits_give_the_same_loss_and_gradients(tiny_model_dirs, release_dir, family):
    from ml.chat import conversation
    from ml.collator import ChatCollator, ChatExample
    from ml.config import LoraSettings, ModelConfig
    from ml.losses import answer_only_sft_loss
    from ml.modeling import load_for_training
    from ml.release import Release
    from ml.stages.sft import sft_loss

    model_cfg = ModelConfig(path=str(tiny_model_dirs[family]), dtype="float32")
    model, processor, _ = load_for_training(model_cfg, LoraSettings(r=4, alpha=8, dropout=0.0))
    rel = Release(release_dir)
    examples = [
        ChatExample(rel.image_path(v.image), conversation(v.question, v.answer))
        for v in rel.vqa("train")[:3]
    ] + [ChatExample(rel.image_path(p.image), conversation("Describe.", p.caption))
         for p in rel.pairs("train")[:1]]  # fmt: skip
    batch = ChatCollator(processor)(examples)
    assert_same_loss_and_grads(model, batch, sft_loss, answer_only_sft_loss)


def test_padding_mask_is_dropped_only_when_every_row_is_right_padded():
    from ml.losses import drop_redundant_padding_mask

    ids = torch.ones(2, 4, dtype=torch.long)
    right = {"input_ids": ids, "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])}
    left = {"input_ids": ids, "attention_mask": torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])}
    holed = {"input_ids": ids, "attention_mask": torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]])}
    assert "attention_mask" not in drop_redundant_padding_mask(right)
    assert drop_redundant_padding_mask(left) is left
    assert drop_redundant_padding_mask(holed) is holed
    assert drop_redundant_padding_mask({"input_ids": ids}) == {"input_ids": ids}


def test_right_padded_batch_trains_the_same_without_its_mask(tiny_model_dirs, release_dir, family):
    """Causal attention makes trailing padding invisible to real tokens: same loss and grads."""
    from functools import partial

    from ml.chat import conversation
    from ml.collator import ChatCollator, ChatExample
    from ml.config import LoraSettings, ModelConfig
    from ml.losses import answer_only_sft_loss
    from ml.modeling import load_for_training
    from ml.release import Release

    model_cfg = ModelConfig(path=str(tiny_model_dirs[family]), dtype="float32")
    model, processor, _ = load_for_training(model_cfg, LoraSettings(r=4, alpha=8, dropout=0.0))
    rel = Release(release_dir)
    examples = [ChatExample(rel.image_path(rel.vqa("train")[0].image), conversation("Q?", "A."))]
    examples.append(
        ChatExample(rel.image_path(rel.pairs("train")[0].image),
                    conversation("Describe.", rel.pairs("train")[0].caption + " long" * 12))
    )  # fmt: skip
    batch = ChatCollator(processor)(examples)
    assert not bool(batch["attention_mask"].all()), "the batch must contain padding"
    assert_same_loss_and_grads(
        model, batch, partial(answer_only_sft_loss, mask_free=False), answer_only_sft_loss
    )


def test_adapter_input_casting_is_switched_for_the_block_and_restored():
    from peft import LoraConfig, get_peft_model

    from ml.loop import adapter_input_casting

    model = get_peft_model(
        torch.nn.Sequential(torch.nn.Linear(4, 4)), LoraConfig(r=2, target_modules=["0"])
    )
    layer = model.base_model.model[0]
    with adapter_input_casting(model, enabled=False):
        assert layer.cast_input_dtype_enabled is False
    assert getattr(layer, "cast_input_dtype_enabled", True) is True


def assert_same_loss_and_grads(model, batch, reference, candidate) -> None:
    """`candidate` gives `reference`'s loss and trainable gradients on `batch`."""
    model.eval()  # no dropout
    losses, grads = [], []
    for fn in (reference, candidate):
        model.zero_grad()
        loss, _ = fn(model, dict(batch))
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.requires_grad])
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
