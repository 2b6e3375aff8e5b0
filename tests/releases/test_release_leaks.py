"""Splits that cannot leak (issue 13): one picture is in one split, or the build refuses.

Each leak kind is seeded: a byte-identical crop in another figure, a resized copy in another
book, and two editions of one work under the book rule. The splitter keeps each together;
with a splitter that ignores them (monkeypatched), the build fails with a clear error.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from curation import release as pipeline
from curation.release.leaks import LeakError, check_leaks


def _pairs_by_id(release) -> dict[int, dict]:
    from curation.services.releases import ready_root

    root = ready_root(release) / "release"
    rows = [json.loads(x) for x in (root / "pairs.jsonl").read_text().splitlines()]
    return {int(r["id"][1:]): r for r in rows}


def _card(release) -> str:
    from curation.services.releases import ready_root

    return (ready_root(release) / "release" / "DATASET_CARD.md").read_text()


def _dermoscopy(seed: int, scale: float = 1.0) -> bytes:
    from PIL import Image

    from curation.samplebook import images

    img = images.draw("dermoscopic", np.random.default_rng(seed), 320, 240)
    if scale != 1.0:
        img = img.resize((int(320 * scale), int(240 * scale)), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _photo_pair(world, book, label, data: bytes):
    """A pair in ``book`` whose panel is the crop ``data`` (stored content-addressed)."""
    from curation.services.storage import store_bytes

    (pair,) = world.add_pair(book, label, seed=5000 + len(world.pairs))
    panel = pair.panel
    panel.image = store_bytes(data, prefix="crops", ext="png")
    panel.save()
    return pair


def _force_apart(monkeypatch, a: int, b: int) -> None:
    """A splitter that ignores duplicates: everything in train except ``b`` in test."""

    def naive(groups, config, inherited=None, *, stats=None):
        return {g.pair_id: ("test" if g.pair_id == b else "train") for g in groups}

    monkeypatch.setattr(pipeline, "assign_splits", naive)


# -- byte-identical crop in another figure --------------------------------------------------
def test_identical_crop_in_another_figure_shares_its_split(world, cut):
    original = world.pairs[0]
    (copy,) = world.add_pair(world.books[2], "7.1", seed=7000)
    copy.panel.image = original.panel.image
    copy.panel.save()
    release = cut(
        split={"rule": "figure", "seed": 3, "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}}
    )
    assert release.status == "ready", release.error
    rows = _pairs_by_id(release)
    assert rows[original.pk]["split"] == rows[copy.pk]["split"]
    assert release.counts["duplicates"]["identical_images"] == 1
    assert "byte-identical crops shared by several units | 1 |" in _card(release)


def test_build_refuses_an_identical_crop_in_two_splits(world, cut, monkeypatch):
    original = world.pairs[0]
    (copy,) = world.add_pair(world.books[2], "7.1", seed=7000)
    copy.panel.image = original.panel.image
    copy.panel.save()
    _force_apart(monkeypatch, original.pk, copy.pk)
    release = cut()
    assert release.status == "failed"
    assert "would be in two splits" in release.error
    assert f"pair p{copy.pk}" in release.error


# -- resized copy in another book ----------------------------------------------------------
@pytest.fixture
def resized_copy(world):
    from curation.services import duplicates

    original = _photo_pair(world, world.books[0], "8.1", _dermoscopy(1))
    copy = _photo_pair(world, world.books[1], "8.2", _dermoscopy(1, scale=0.6))
    other = _photo_pair(world, world.books[2], "8.3", _dermoscopy(2))  # a different picture
    duplicates.index_images(p.panel.image for p in world.pairs)
    counts = duplicates.recluster()
    assert counts["clusters"] == 1
    return original, copy, other


def test_resized_copy_in_another_book_shares_its_split_under_the_book_rule(
    world, cut, resized_copy
):
    original, copy, _other = resized_copy
    release = cut(
        split={"rule": "book", "seed": 1, "ratios": {"train": 0.34, "val": 0.33, "test": 0.33}}
    )
    assert release.status == "ready", release.error
    rows = _pairs_by_id(release)
    assert rows[original.pk]["split"] == rows[copy.pk]["split"]
    # The cluster joins the two books: every pair of both is in one split.
    book_splits = {
        rows[p.pk]["split"]
        for p in world.pairs
        if p.textbook_id in (world.books[0].pk, world.books[1].pk) and p.pk in rows
    }
    assert len(book_splits) == 1
    assert release.counts["duplicates"]["duplicate_clusters"] == 1
    assert "near-duplicate clusters merged across units | 1 |" in _card(release)


def test_build_refuses_a_duplicate_cluster_in_two_splits(world, cut, resized_copy, monkeypatch):
    original, copy, _other = resized_copy
    _force_apart(monkeypatch, original.pk, copy.pk)
    release = cut()
    assert release.status == "failed"
    assert "cluster" in release.error and "two splits" in release.error


# -- two editions of one work --------------------------------------------------------------
def test_two_editions_of_one_work_share_a_split(world, cut):
    from curation.services.works import set_work

    first, second = world.books[0], world.books[1]
    work = set_work(first, world.curator, title="Atlas of Dermatology", authors="Habif")
    set_work(second, world.curator, work_id=work.pk)
    for seed in range(6):  # enough seeds that unlinked books would land apart at least once
        release = cut(
            version=f"1.0.{seed}",
            split={
                "rule": "book",
                "seed": seed,
                "ratios": {"train": 0.34, "val": 0.33, "test": 0.33},
            },
        )
        assert release.status == "ready", release.error
        rows = _pairs_by_id(release)
        splits = {
            r["split"]
            for r in rows.values()
            if r["provenance"]["book"]["id"] in (first.pk, second.pk)
        }
        assert len(splits) == 1
    assert release.counts["duplicates"]["works_with_editions"] == 1
    assert "works whose editions were merged | 1 |" in _card(release)


def test_build_refuses_two_editions_in_two_splits(world, cut, monkeypatch):
    from curation.services.works import set_work

    first, second = world.books[0], world.books[1]
    work = set_work(first, world.curator, title="Atlas of Dermatology")
    set_work(second, world.curator, work_id=work.pk)
    a = next(p for p in world.pairs if p.textbook_id == first.pk and p.status == "accepted")
    b = next(p for p in world.pairs if p.textbook_id == second.pk and p.status == "accepted")
    _force_apart(monkeypatch, a.pk, b.pk)
    release = cut(split={"rule": "book"})
    assert release.status == "failed"
    assert f"work {work.pk}" in release.error


def test_check_leaks_reads_the_written_rows(tmp_path: Path):
    rows = [
        {"id": "p1", "image": "images/aa/aaa.png", "split": "train"},
        {"id": "p2", "image": "images/bb/bbb.png", "split": "val"},
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert check_leaks(tmp_path, {1: ("cluster:x",), 2: ("cluster:y",)}) == 2
    with pytest.raises(LeakError, match="cluster x is in train"):
        check_leaks(tmp_path, {1: ("cluster:x",), 2: ("cluster:x",)})
    (tmp_path / "vqa.jsonl").write_text(
        json.dumps({"pair_id": "p2", "image": "images/aa/aaa.png", "split": "val"}) + "\n"
    )
    with pytest.raises(LeakError, match="image aaa is in train"):
        check_leaks(tmp_path)
