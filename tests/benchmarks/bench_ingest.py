"""Ingest throughput and worker memory on the sample book scaled to 500 pages.

    make bench-ingest                 # embedded defaults (SQLite, filesystem broker)
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/mmskin_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/3 make bench-ingest

Prints seconds per 100 pages and the peak resident memory of one worker (its process tree),
with one and with two worker processes. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def _manage(env: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def _reset_services(env: dict) -> None:
    url = env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    broker = env.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis://"):
        import redis

        redis.Redis.from_url(broker).flushdb()


def _book_status(env: dict) -> tuple[str, int, int]:
    """Read the book's state straight from the database: polling must not load the machine."""
    query = "SELECT status, figures_found, page_count FROM curation_textbook"
    url = env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(query).fetchone()
    else:
        import sqlite3

        conn = sqlite3.connect(Path(env["VAR_DIR"]) / "db.sqlite3", timeout=30)
        try:
            row = conn.execute(query).fetchone()
        finally:
            conn.close()
    return row if row else ("queued", 0, 0)


def run_once(book: Path, workers: int, chunk_pages: int) -> dict:
    var_dir = Path(tempfile.mkdtemp(prefix="mmskin-bench-"))
    env = {
        **os.environ,
        "SECRET_KEY": "bench-only-not-a-secret-but-long-enough-for-the-start-up-check",
        "VAR_DIR": str(var_dir),
        "INGEST_CHUNK_PAGES": str(chunk_pages),
        "DJANGO_SETTINGS_MODULE": "skinplatform.settings",
        "LOG_LEVEL": "WARNING",
    }
    _reset_services(env)
    _manage(env, "migrate", "--noinput")
    worker_cmd = [sys.executable, "-m", "celery", "-A", "skinplatform", "worker", "-Q", "ingest"]
    procs = [
        subprocess.Popen(
            [*worker_cmd, "-c", "1", "-l", "warning", "-n", f"bench{i}@%h"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    watched = [psutil.Process(p.pid) for p in procs]
    time.sleep(3)  # let the workers finish booting so start-up is not timed
    peak = [0] * workers
    start = time.perf_counter()
    _manage(env, "import_textbook", str(book))
    while True:
        for i, proc in enumerate(watched):
            peak[i] = max(peak[i], _tree_rss(proc))
        state, figures, pages = _book_status(env)
        if state in ("done", "failed"):
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(30)
    return {
        "workers": workers,
        "state": state,
        "pages": int(pages),
        "figures": int(figures),
        "seconds": elapsed,
        "s_per_100_pages": elapsed / int(pages) * 100,
        "peak_worker_mb": max(peak) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--chunk-pages", type=int, default=20)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()

    from curation.samplebook import chapters_for_pages, generate_book

    book = ROOT / "var" / "bench" / f"sample-{args.pages}p.pdf"
    if not book.exists():
        book.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        generate_book(book, chapters=chapters_for_pages(args.pages), seed=1)
        print(f"generated {book} in {time.perf_counter() - t0:.1f}s", flush=True)
    db = "postgres" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    broker = os.environ.get("CELERY_BROKER_URL", "filesystem://").split(":")[0]
    print(f"database={db} broker={broker} cpus={os.cpu_count()} chunk={args.chunk_pages} pages")
    rows = [run_once(book, int(n), args.chunk_pages) for n in args.workers.split(",")]
    header = ("workers", "state", "pages", "figures", "seconds", "s/100 pages", "peak MB/worker")
    print(" ".join(f"{h:>8}" for h in header))
    for r in rows:
        cells = (
            r["workers"], r["state"], r["pages"], r["figures"], f"{r['seconds']:.1f}",
            f"{r['s_per_100_pages']:.1f}", f"{r['peak_worker_mb']:.0f}",
        )  # fmt: skip
        print(" ".join(f"{c:>8}" for c in cells))


if __name__ == "__main__":
    main()
