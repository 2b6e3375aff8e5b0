"""What a stage records about itself: reproducible from `train.seed`, and where it started."""

import json

from tests.ml.conftest import run_stage


def _align(tiny_model_dirs, release_dir, out, seed):
    rc = run_stage(
        "align",
        tiny_model_dirs["llava"],
        release_dir,
        out,
        "train.max_steps=2",
        f"train.seed={seed}",
    )
    assert rc == 0
    return json.loads((out / "summary.json").read_text())


def test_same_seed_same_run_and_fingerprints(tmp_path, tiny_model_dirs, release_dir):
    import torch

    a = _align(tiny_model_dirs, release_dir, tmp_path / "a", seed=3)
    torch.rand(7)  # whatever ran before in the process must not matter
    b = _align(tiny_model_dirs, release_dir, tmp_path / "b", seed=3)
    c = _align(tiny_model_dirs, release_dir, tmp_path / "c", seed=4)
    assert a["trainable_sha256"] == b["trainable_sha256"] != c["trainable_sha256"]
    assert a["init_trainable_sha256"] == b["init_trainable_sha256"]
    assert a["init_trainable_sha256"] != c["init_trainable_sha256"]  # a fresh LoRA init
    assert a["init_from"] is None
    for key in ("probe_loss_before", "probe_loss_after", "loss_start_mean", "loss_end_mean"):
        assert a[key] == b[key], key
