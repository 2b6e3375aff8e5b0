"""The pure near-duplicate code: same picture altered joins, look-alikes and flat crops don't."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.dedupe import Descriptor, cluster, describe, describe_image
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
