"""Training configuration as plain dataclasses, read from YAML.

Configs are data (checked into `ml/configs/`), so a run is reproducible from its file plus
`--set` overrides; unknown keys are errors, because a typo silently falling back to a default
is the classic way to train the wrong thing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelConfig:
    """Which model to load and how to run it."""

    # A local directory holding a transformers checkpoint (never a hub id: no downloads).
    path: str | None = None
    dtype: str = "bfloat16"  # bfloat16 | float16 | float32
    attn_implementation: str = "sdpa"  # sdpa | eager | flash_attention_2
    gradient_checkpointing: bool = True
    liger: bool = False  # patch in Liger kernels when the package is importable
    # torch.compile each decoder layer of the language model (CUDA only; fuses norms, rotary,
    # activations and LoRA dropout). First steps pay the compile time.
    compile_lm_layers: bool = False


@dataclass
class LoraSettings:
    """LoRA on the language model, plus which other parts train."""

    enabled: bool = True
    r: int = 128
    alpha: int = 64
    dropout: float = 0.05
    # Explicit module names inside the language model; empty means the family's defaults.
    target_modules: list[str] = field(default_factory=list)
    train_projector: bool = True
    train_vision_tower: bool = False


@dataclass
class ExtraDataset:
    """A LLaVA-format JSON dataset mixed into training (see ml/mixing.py)."""

    path: str = ""
    # The folder the records' image paths are relative to (LLaVA's --image_folder); default:
    # the JSON file's folder.
    image_root: str | None = None
    # Times per epoch each example is seen on average (0.5: a seeded random half).
    weight: float = 1.0
    name: str | None = None  # in counts and logs; default: the file's stem


@dataclass
class DataConfig:
    """Where the release is and how examples are built from it."""

    release: str | None = None
    verify: bool = True
    train_split: str = "train"
    eval_split: str = "test"
    # SFT: also train on captions, phrased as "describe" instructions.
    include_captions: bool = True
    describe_prompt: str = "Describe the findings in this image."
    max_length: int = 2048
    # Cap the number of examples (smoke runs, tests); 0 means all.
    limit: int = 0
    # Public LLaVA-format datasets mixed into align/sft (SkinVL-Pub, SkinVL-PubMM).
    extra: list[ExtraDataset] = field(default_factory=list)
    # The release's sampling weight among the sources (0: train on data.extra alone and keep
    # the release for evaluation).
    release_weight: float = 1.0


@dataclass
class TrainConfig:
    """The optimisation loop."""

    output_dir: str = "runs/default"
    # The previous stage's output (adapter and projector) to start from.
    init_from: str | None = None
    lr: float = 5e-5
    projector_lr: float | None = None
    weight_decay: float = 0.0
    epochs: float = 1.0
    max_steps: int = 0  # 0: run `epochs`
    batch_size: int = 16  # global, in samples per optimiser step
    micro_batch_size: int = 4  # per device, per forward
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"  # cosine | linear | constant
    max_grad_norm: float = 1.0
    group_by_length: bool = True
    # Project onto the vocabulary only at answer positions (same loss, less compute and memory).
    answer_only_logits: bool = True
    seed: int = 0
    log_every: int = 10
    num_workers: int = 0
    # Checkpoint every N optimizer steps (0: only after the last); see ml/checkpoint.py.
    save_every: int = 0
    keep_checkpoints: int = 2  # the newest N stay on disk
    # Continue from the newest checkpoint in output_dir (`train --resume`); none there: step 0.
    resume: bool = False


@dataclass
class DPOSettings:
    """Preference optimisation (sigmoid DPO loss)."""

    beta: float = 0.1
    label_smoothing: float = 0.0


@dataclass
class EvalSettings:
    """Decoding for evaluation; recorded next to the scores."""

    max_new_tokens: int = 128
    do_sample: bool = False
    num_beams: int = 1
    batch_size: int = 8
    # A benchmark suite (YAML, see ml/benchmarks.py) the worker's eval runs also score.
    suite: str | None = None


@dataclass
class SftClsSettings:
    """`train --stage sft_cls`: MM-Skin's supervised classification (see ml/stages/sft_cls.py)."""

    train_csv: str | None = None  # an MM-Skin classification CSV
    test_csv: str | None = None
    images: str | None = None  # the folder both CSVs' image paths are relative to
    # Bare `list`, not list[str]/list[float]: `_coerce` reads a parametrised list as its
    # element type (str(list), float(list)), so these would not survive a YAML round trip.
    labels: list = field(default_factory=list)  # of str; empty: the CSVs' categories
    folds: int = 5  # cross-validation folds for choosing C (fewer when a class is smaller)
    # Inverse L2 strengths tried (floats), MM-Skin's 10**linspace(-5, 1, 10).
    c_grid: list = field(default_factory=lambda: [10 ** (-5 + i * 6 / 9) for i in range(10)])
    scoring: str = "roc_auc_ovr"  # scikit-learn scorer for the choice of C, as MM-Skin
    batch_size: int = 16  # images per feature-extraction forward


@dataclass
class Config:
    """A whole run: one YAML file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dpo: DPOSettings = field(default_factory=DPOSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    sft_cls: SftClsSettings = field(default_factory=SftClsSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for saving next to the artefacts."""
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in {where}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{name} must be a mapping")
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Light type checking: YAML gives ints for floats and strings for everything on the CLI."""
    # Only a union's arguments are alternatives; `list[str]`'s are its item type.
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where} may not be null")
    base = [a for a in args if a is not type(None)] if args else [hint]
    target = base[0]
    origin = typing.get_origin(target) or target
    if origin is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be a boolean, got {value!r}")
        return value
    if origin in (int, float):
        try:
            return origin(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} must be {origin.__name__}, got {value!r}") from exc
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        item = (typing.get_args(target) or [None])[0]
        if dataclasses.is_dataclass(item):  # a list of sections (data.extra)
            if not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{where} must be a list of mappings")
            return [_build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(value)
    if origin is str:
        return str(value)
    return value


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a nested dict into a `Config`."""
    return _build(Config, data or {}, "config")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings (from `--set`) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file and apply overrides."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return config_from_dict(apply_overrides(data, overrides or []))


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the effective config next to a run's outputs."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
