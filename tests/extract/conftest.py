"""Shared sample books for the extraction tests: generated once per session into a temp folder."""

from __future__ import annotations

import pytest

from curation.extract import extract_book
from curation.samplebook import generate_book


@pytest.fixture(scope="session")
def sample_book(tmp_path_factory):
    """A two-chapter classic sample book and its gold data (few distinct pictures, for speed)."""
    path = tmp_path_factory.mktemp("book") / "sample.pdf"
    gold = generate_book(path, chapters=2, pages_per_chapter=6, seed=0, unique_images=8)
    return path, gold


@pytest.fixture(scope="session")
def sample_figures(sample_book):
    path, _ = sample_book
    return extract_book(path)


@pytest.fixture(scope="session")
def small_book(tmp_path_factory):
    """A one-chapter book for the slower tests (CLI subprocesses, determinism)."""
    path = tmp_path_factory.mktemp("small") / "small.pdf"
    gold = generate_book(path, chapters=1, pages_per_chapter=4, seed=3)
    return path, gold
