"""The review queue's Postgres path and its SQLite path give the same results on the same
scenarios (``queue_scenarios``), each run on a fresh database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("PARITY_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")

pytestmark = pytest.mark.slow


def _trace(database_url: str, var_dir: Path) -> list:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "VAR_DIR": str(var_dir),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-m", "tests.platform.queue_scenarios"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def postgres_url():
    """A scratch Postgres database for the Postgres half (dropped after)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"mmskin_parity_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Postgres at {POSTGRES} outside CI: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_sqlite_and_postgres_give_the_same_queue(tmp_path, postgres_url):
    sqlite = _trace(f"sqlite:///{tmp_path / 'parity.sqlite3'}", tmp_path / "sqlite")
    postgres = _trace(postgres_url, tmp_path / "postgres")
    assert [row[0] for row in sqlite] == [row[0] for row in postgres]
    for a, b in zip(sqlite, postgres, strict=True):
        assert a == b, (a, b)
    # The scenarios mean something: the steps hit both claims and refusals.
    outcomes = {json.dumps(row[1:]) for row in sqlite}
    assert any("refused" in o for o in outcomes) and len(outcomes) > 8
