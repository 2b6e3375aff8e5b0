"""ml trains with its own loop: TRL and accelerate are test-only pins, and ml imports neither."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_trl_and_accelerate_are_dev_pins_that_ml_never_imports():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {key: {re.split(r"[=<>\[]", d)[0] for d in deps} for key, deps in extras.items()}
    assert not {"trl", "accelerate"} & names["ml"]
    assert {"trl", "accelerate"} <= names["dev"]  # tests/releases/test_consumers.py needs TRL
    importing = re.compile(r"^\s*(from|import)\s+(trl|accelerate)\b", re.M)
    offenders = [str(p) for p in (ROOT / "ml").rglob("*.py") if importing.search(p.read_text())]
    assert not offenders
    assert "Why not TRL" in (ROOT / "ml" / "README.md").read_text()
