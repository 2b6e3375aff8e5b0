"""Config files load into the schema; typos fail loudly."""

from pathlib import Path

import pytest

from ml.config import ConfigError, config_from_dict, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "ml" / "configs"


@pytest.mark.parametrize(
    "name",
    [
        "llava15_7b_lora.yaml",
        "llava15_7b_lora_h100.yaml",
        "qwen25vl_3b_lora.yaml",
        "skinvl_pub.yaml",
        "skinvl_pubmm.yaml",
    ],
)
def test_shipped_configs_use_skinvl_settings(name):
    cfg = load_config(CONFIGS / name)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.train.lr) == (128, 64, 5e-5)
    assert cfg.train.batch_size == 16 and cfg.data.max_length == 2048
    assert cfg.model.dtype == "bfloat16" and not cfg.lora.train_vision_tower


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="lerning_rate"):
        config_from_dict({"train": {"lerning_rate": 1.0}})


def test_overrides_are_typed():
    cfg = load_config(
        CONFIGS / "tiny_cpu.yaml",
        ["train.max_steps=3", "model.gradient_checkpointing=false", "train.lr=1e-3"],
    )
    assert cfg.train.max_steps == 3
    assert cfg.model.gradient_checkpointing is False
    assert cfg.train.lr == pytest.approx(1e-3)


def test_skinvl_pub_recipes_mix_the_public_llava_json():
    pub = load_config(CONFIGS / "skinvl_pub.yaml")
    pubmm = load_config(CONFIGS / "skinvl_pubmm.yaml")
    for cfg in (pub, pubmm):
        (extra,) = cfg.data.extra
        assert extra.path.endswith("Dataframe/Pretrain/vqa_Pub.json") and extra.weight == 1.0
        assert cfg.train.save_every > 0
    assert pub.data.release_weight == 0 and pubmm.data.release_weight == 1.0
