"""The pure near-duplicate code: same picture altered joins, look-alikes and flat crops don't."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.dedupe import (
    Descriptor,
    cluster,
    cluster_components,
    describe,
    describe_image,
    update,
)
from curation.samplebook import images as drawn


def _jpeg(img: Image.Image, quality: int = 70) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def dermoscopies() -> list[Image.Image]:
    rng = np.random.default_rng(4)
    return [drawn.draw("dermoscopic", rng, 320, 240) for _ in range(8)]


def test_altered_copies_join_their_original(dermoscopies):
    original = dermoscopies[0]
    w, h = original.size
    copies = [
        _jpeg(original, 60),
        _jpeg(original.resize((w // 2, h // 2))),
        _jpeg(original.crop((int(w * 0.04), int(h * 0.03), int(w * 0.96), int(h * 0.95)))),
        _jpeg(drawn.burn_marks(original, np.random.default_rng(1))),
    ]
    descs = [describe_image(original)] + [describe(c) for c in copies]
    assert cluster(descs) == [0] * 5


def test_different_pictures_of_one_kind_stay_apart(dermoscopies):
    """The chaining case: eight dark discs with brown lesions are eight pictures."""
    descs = [describe_image(img) for img in dermoscopies]
    assert cluster(descs) == list(range(8))


def test_a_chain_of_look_alikes_does_not_merge_through_its_links(dermoscopies):
    """Cross-fades A -> B: each step is close to the next, the ends are different pictures."""
    a, b = (np.asarray(img, np.float32) for img in dermoscopies[:2])
    steps = [Image.fromarray((a * (1 - f) + b * f).astype(np.uint8)) for f in np.linspace(0, 1, 9)]
    labels = cluster([describe_image(s) for s in steps])
    assert labels[0] != labels[-1]
    assert max(labels.count(x) for x in set(labels)) < 9


def test_flat_crops_never_join_by_hash():
    flats = [
        Image.new("RGB", (200, 150), (200, 180, 170)),
        Image.new("RGB", (200, 150), (201, 180, 170)),
    ]
    descs = [describe_image(f) for f in flats]
    assert not descs[0].informative
    assert cluster(descs) == [0, 1]


def test_cannot_link_keeps_an_expert_verdict_and_must_link_joins(dermoscopies):
    original = dermoscopies[0]
    descs = [
        describe_image(original),
        describe(_jpeg(original, 80)),
        describe_image(dermoscopies[1]),
    ]
    assert cluster(descs) == [0, 0, 2]
    assert cluster(descs, cannot_link=[(0, 1)]) == [0, 1, 2]
    assert cluster(descs, must_link=[(1, 2)]) == [0, 0, 0]


def test_descriptor_round_trips_through_bytes(dermoscopies):
    d = describe_image(dermoscopies[3])
    assert Descriptor.from_bytes(d.to_bytes()) == d
    assert d.keypoint_count > 12


def test_the_dedupe_package_imports_no_django():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, curation.dedupe, curation.release.leaks, curation.release.split; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'django')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# -- incremental: a new book against the index ---------------------------------------------
def _shelf() -> list[Descriptor]:
    """Pictures, altered copies and a look-alike chain, in an order that scatters the copies
    of one picture over several books (bench_dedupe's generator, small)."""
    from tests.benchmarks.bench_dedupe import corpus

    crops, _truth, _kinds = corpus(160, [], seed=3)
    rng = np.random.default_rng(8)
    a, b = (np.asarray(drawn.draw("dermoscopic", rng, 320, 240), np.float32) for _ in range(2))
    for f in np.linspace(0, 1, 9):
        buf = io.BytesIO()
        Image.fromarray((a * (1 - f) + b * f).astype(np.uint8)).save(buf, "PNG")
        crops.append(buf.getvalue())
    unique = list(dict.fromkeys(crops))  # byte-identical crops are one image
    return [describe(unique[k]) for k in rng.permutation(len(unique))]


@pytest.fixture(scope="module")
def shelf() -> list[Descriptor]:
    return _shelf()


def test_adding_books_one_by_one_equals_clustering_everything(shelf):
    bounds = [40, 80, 120, len(shelf)]
    state: list[tuple[int, int] | None] = []
    redone = []
    for end in bounds:
        previous = state + [None] * (end - len(state))
        result, redo = update(shelf[:end], previous)
        assert result == cluster_components(shelf[:end])
        state = list(zip(result.labels, result.components, strict=True))
        redone.append(len(redo))
    whole = cluster_components(shelf)
    assert result == whole
    # what the test covers: copies joined across books, and a component the chaining guard
    # split into several clusters (the look-alike chain)
    assert any(whole.labels.count(x) > 1 for x in set(whole.labels))
    assert any(len({whole.labels[k] for k, c in enumerate(whole.components) if c == comp}) > 1
               for comp in set(whole.components))  # fmt: skip
    # and only the new crops and the components they touch were clustered again
    assert all(n < end for n, end in zip(redone[1:], bounds[1:], strict=True))
    assert redone[0] == bounds[0]


def test_a_verdict_reclusters_its_components_to_the_global_result(shelf):
    whole = cluster_components(shelf)
    state = list(zip(whole.labels, whole.components, strict=True))
    a = next(k for k, lab in enumerate(whole.labels) if whole.labels.count(lab) > 1)
    b = next(k for k, lab in enumerate(whole.labels) if lab == whole.labels[a] and k != a)
    c = next(k for k, lab in enumerate(whole.labels) if whole.components[k] != whole.components[a])
    for links in ({"cannot_link": [(a, b)]}, {"must_link": [(a, c)]}):
        result, redo = update(shelf, state, around=[a, b, c], **links)
        assert result == cluster_components(shelf, **links)
        assert len(redo) < len(shelf)
    assert update(shelf, state) == (whole, [])  # nothing new: nothing redone


class _Oracle:
    """Stands in for the ORB check only: which pairs "verify" is drawn at random, so that many
    graphs (and the guard's order effects) are tried; the hashes, candidate pairs, guards and
    the incremental bookkeeping are the real code."""

    edges: set[frozenset[int]] = set()

    def __init__(self, descs, _t) -> None:
        self.names = [int.from_bytes(d.points[:4], "little") for d in descs]

    def __call__(self, i: int, j: int) -> bool:
        return frozenset((self.names[i], self.names[j])) in self.edges


def _random_descs(rng: np.random.Generator, n: int) -> list[Descriptor]:
    """Descriptors whose pHashes differ in at most 16 low bits: every pair is a candidate, at
    distances that vary, so that the order of the candidates matters."""
    out = []
    for name in range(n):
        p = tuple(int(rng.integers(0, 1 << 16)) & int(rng.integers(0, 1 << 16)) for _ in range(3))
        out.append(
            Descriptor(
                phash=p, dhash=(0, 0, 0), colour=bytes(48 * 3), informative=True,
                points=name.to_bytes(4, "little"), features=b"",
            )
        )  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(40))
def test_incremental_equals_global_on_random_graphs(seed, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["curation.dedupe.cluster"], "_Verifier", _Oracle)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 30))
    descs = _random_descs(rng, n)
    p = float(rng.uniform(0.05, 0.3))
    _Oracle.edges = {frozenset((i, j)) for i in range(n) for j in range(i) if rng.random() < p}
    cannot = [tuple(int(x) for x in rng.choice(n, 2, replace=False)) for _ in range(2)]
    cuts = sorted(set(rng.choice(np.arange(1, n), int(rng.integers(1, 4)), replace=False)))
    state: list[tuple[int, int] | None] = []
    for end in [*map(int, cuts), n]:
        previous = state + [None] * (end - len(state))
        links = [(a, b) for a, b in cannot if a < end and b < end]
        result, _redo = update(descs[:end], previous, cannot_link=links)
        assert result == cluster_components(descs[:end], cannot_link=links)
        state = list(zip(result.labels, result.components, strict=True))
