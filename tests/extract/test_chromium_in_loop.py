"""The Chromium producer works where an asyncio loop is already running (a notebook, or a test
session whose browser fixture holds Playwright's loop), which Playwright's sync API refuses."""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from curation.samplebook import chromium, generate_book

if not Path(chromium.CHROMIUM).exists():
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        raise RuntimeError(f"no Chromium at {chromium.CHROMIUM}; .ci/run installs it")
    pytest.skip(f"no Chromium at {chromium.CHROMIUM}", allow_module_level=True)


def test_a_chromium_book_is_made_inside_a_running_event_loop(tmp_path):
    async def make():
        return generate_book(
            tmp_path / "b.pdf", chapters=1, pages_per_chapter=2, seed=3, producer="chromium"
        )

    # A thread of its own, where asyncio.run may start a loop even when this one runs one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        gold = pool.submit(asyncio.run, make()).result()
    assert gold.producer == "chromium" and gold.figures
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
