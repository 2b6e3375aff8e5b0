"""Align and DPO stages chain from each other's outputs on tiny models."""

import json

from safetensors.torch import load_file

from tests.ml.conftest import run_stage


def test_dpo_grows_chosen_rejected_margin(tmp_path, sft_run, tiny_model_dirs, release_dir, family):
    out = tmp_path / "dpo"
    rc = run_stage(
        "dpo",
        tiny_model_dirs[family],
        release_dir,
        out,
        f"train.init_from={sft_run}",
        "train.max_steps=6",
        "train.lr=5e-3",
        "dpo.beta=0.5",
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    # Margin = mean over preference pairs of log p(chosen) - log p(rejected), under the SFT
    # reference before training and under the policy after it.
    assert summary["margin_after"] > summary["margin_before"] + 0.5, summary
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["reward_margin"] > 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_align_projector_only_then_sft_resumes(tmp_path, tiny_model_dirs, release_dir, family):
    align = tmp_path / "align"
    rc = run_stage(
        "align",
        tiny_model_dirs[family],
        release_dir,
        align,
        "lora.enabled=false",
        "train.max_steps=4",
        "train.lr=1e-2",
    )
    assert rc == 0
    history = json.loads((align / "history.json").read_text())
    assert history[-1]["loss"] < history[0]["loss"]
    projector = load_file(align / "projector.safetensors")
    assert projector and not (align / "adapter").exists()
    sft = tmp_path / "sft"
    assert (
        run_stage(
            "sft",
            tiny_model_dirs[family],
            release_dir,
            sft,
            f"train.init_from={align}",
            "train.max_steps=1",
        )
        == 0
    )
    assert (sft / "adapter" / "adapter_model.safetensors").is_file()
