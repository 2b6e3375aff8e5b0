"""Merging an SFT adapter: the merged checkpoint reloads with AutoModelForImageTextToText alone
and gives the same outputs as base + adapter, with the trained projector kept."""

from __future__ import annotations

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

from ml.chat import prompt_for_generation
from ml.cli import main
from ml.families import get_submodule
from ml.modeling import load_processor, model_family
from ml.release import Release


def _batch(processor, release_dir):
    rel = Release(release_dir)
    items = rel.vqa("test")[:2]
    prompts = [prompt_for_generation(processor, v.question) for v in items]
    images = [Image.open(rel.image_path(v.image)).convert("RGB") for v in items]
    return dict(
        processor(text=prompts, images=images, return_tensors="pt", padding=True,
                  padding_side="left")
    )  # fmt: skip


def test_merged_model_matches_adapter_and_keeps_projector(
    tmp_path, sft_run, tiny_model_dirs, release_dir, family
):
    from peft import PeftModel

    out = tmp_path / "merged"
    assert main(["merge", "--run", str(sft_run), "--out", str(out)]) == 0
    assert not (out / "adapter_config.json").exists()

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dirs[family]).eval()
    base_projector = {
        k: v.clone()
        for k, v in get_submodule(base, model_family(base).projector).state_dict().items()
    }
    with_adapter = PeftModel.from_pretrained(base, sft_run / "adapter").eval()
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = load_processor(out)
    batch = _batch(processor, release_dir)
    with torch.no_grad():
        expected = with_adapter(**batch).logits
        got = merged(**batch).logits
        generated = merged.generate(**batch, max_new_tokens=4, do_sample=False)
        generated_ref = with_adapter.generate(**batch, max_new_tokens=4, do_sample=False)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(generated, generated_ref)

    merged_projector = get_submodule(merged, model_family(merged).projector).state_dict()
    assert any(not torch.equal(merged_projector[k], v) for k, v in base_projector.items()), (
        "the merged projector is the untrained base one"
    )
