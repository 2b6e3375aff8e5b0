"""`python -m ml merge`: fold a stage's LoRA adapter (and trained projector) into the base model.

The result is a plain transformers checkpoint that `AutoModelForImageTextToText` loads with no
peft installed. The projector trained alongside the adapter (peft `modules_to_save`) is what
ends up in the merged weights, not the base model's: SkinVL's public merge script could drop
it, silently shipping an untrained projector. `merge_run` checks this after merging.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from ml.families import get_submodule
from ml.modeling import (
    PROJECTOR_FILE,
    load_base_model,
    load_processor,
    load_projector,
    model_family,
)

log = logging.getLogger(__name__)


class MergeError(RuntimeError):
    """The merged model does not hold what was trained."""


def _run_model_config(run_dir: Path, model_path: str | None, dtype: str | None):
    from ml.config import config_from_dict

    config_file = run_dir / "config.yaml"
    data = yaml.safe_load(config_file.read_text("utf-8")) if config_file.is_file() else {}
    cfg = config_from_dict(data or {})
    if model_path:
        cfg.model.path = model_path
    if dtype:
        cfg.model.dtype = dtype
    if not cfg.model.path:
        raise ValueError(f"{run_dir} names no base model: pass --model")
    return cfg.model


def _projector_state(model: Any) -> dict[str, torch.Tensor]:
    module = get_submodule(model, model_family(model).projector)
    if hasattr(module, "modules_to_save"):  # peft's wrapper: the trained copy is the live one
        module = module.modules_to_save[module.active_adapter]
    return {k: v.detach().float().cpu().clone() for k, v in module.state_dict().items()}


def merge_run(
    run_dir: str | Path,
    out_dir: str | Path,
    model_path: str | None = None,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Merge the adapter in `run_dir` (a stage's output) into its base model; save to `out_dir`."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model_cfg = _run_model_config(run_dir, model_path, dtype)
    model = load_base_model(model_cfg)
    family = model_family(model)
    if (run_dir / PROJECTOR_FILE).is_file():
        load_projector(model, family, run_dir / PROJECTOR_FILE)
    adapter = run_dir / "adapter"
    merged_lora = False
    expected_projector = None
    if adapter.is_dir():
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, adapter)
        peft_model.eval()
        # The projector the adapter carries (modules_to_save), as the trained model uses it.
        expected_projector = _projector_state(peft_model)
        model = peft_model.merge_and_unload()
        merged_lora = True
    elif not (run_dir / PROJECTOR_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} has neither adapter/ nor {PROJECTOR_FILE}")
    if expected_projector is not None:
        got = _projector_state(model)
        if got.keys() != expected_projector.keys() or any(
            not torch.equal(got[k], expected_projector[k]) for k in got
        ):
            raise MergeError("the merged model's projector is not the trained one")
    model.config.use_cache = True
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc_dir = run_dir / "processor"
    processor = load_processor(proc_dir if proc_dir.is_dir() else model_cfg.path)
    processor.save_pretrained(out_dir)
    summary = {
        "run": str(run_dir),
        "base": model_cfg.path,
        "out": str(out_dir),
        "merged_lora": merged_lora,
        "projector": family.projector,
        "dtype": model_cfg.dtype,
    }
    log.info("merged %s into %s", run_dir, out_dir)
    return summary
