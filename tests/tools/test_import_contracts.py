"""The import contracts in pyproject.toml (run by `make lint`) hold on the tree, and break
when a module crosses a layer: checked on a copy of the packages with one bad import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("curation", "workers", "ml", "skinplatform")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc", "data")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("curation/services/probe.py", "import workers.llm\n", "never import the Celery task"),
        ("ml/probe.py", "import django.db\n", "import no Django"),
        ("curation/extract/probe.py", "from curation import models\n", "import no Django"),
        ("ml/probe2.py", "import curation.limits\n", "only over the REST API"),
        ("curation/selectors/probe.py", "import curation.views.review\n", "HTTP layer"),
    ],
)
def test_a_layer_crossing_breaks_lint(tree, module, line, contract):
    (tree / module).write_text(line)
    result = _lint(tree)
    assert result.returncode != 0
    assert "Broken contracts" in result.stdout, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, broken
    probe = module.removesuffix(".py").replace("/", ".")
    assert f"{probe} -> " in broken, broken  # the report names the offending import
