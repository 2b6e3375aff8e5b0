"""Training stages. Each one is a function `run(cfg, on_log) -> summary dict`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml.config import Config

StageFn = Callable[..., dict[str, Any]]


class NotImplementedYet(NotImplementedError):
    """A verb or stage that exists in the CLI but is not built yet (never pretended)."""


def get_stage(name: str) -> StageFn:
    """The run function of a stage by name."""
    if name == "sft":
        from ml.stages.sft import run

        return run
    if name == "align":
        from ml.stages.sft import run_align

        return run_align
    if name == "dpo":
        from ml.stages.dpo import run as run_dpo

        return run_dpo
    if name == "sft_cls":
        from ml.stages.sft_cls import run as run_sft_cls

        return run_sft_cls
    raise ValueError(f"unknown stage {name!r}; known: align, sft, dpo, sft_cls")


__all__ = ["Config", "NotImplementedYet", "get_stage"]
