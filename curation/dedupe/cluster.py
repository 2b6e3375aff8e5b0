"""Clustering descriptors into "the same picture", without chaining.

Single-link union-find over a hash distance chains: A~B and B~C put A and C together however
far apart they are, and among thousands of generated dermoscopies that grew clusters of
thousands. Here:

1. Cheap hash tests only *propose* candidate pairs (closest framings' pHash, then dHash and
   the colour grid at those framings).
2. A candidate becomes an edge only if ORB keypoints of the two crops agree under one
   similarity transform (enough RANSAC inliers).
3. Two clusters merge along an edge only if their representatives (each cluster's first
   crop) verify against each other as well, so every member of a cluster has been checked
   against the picture the cluster stands for, and a chain of look-alikes stops at its
   first link.

Expert verdicts enter as constraints: ``must_link`` pairs are joined first, ``cannot_link``
pairs never end up in one cluster through an edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from curation.dedupe.describe import FRAMINGS, Descriptor

_BLOCK = 128
_NF = len(FRAMINGS)


@dataclass(frozen=True)
class Thresholds:
    """Chosen on tests/benchmarks/bench_dedupe.py (its docstring has the figures)."""

    phash: int = 16  # candidate: pHash Hamming distance (of 64 bits) at the closest framings
    dhash: int = 20
    colour: float = 10.0  # mean absolute difference of the colour grid (0-255)
    match_distance: int = 64  # ORB descriptor Hamming distance (of 256 bits) for a match
    inliers: int = 10  # keypoint matches one similarity transform explains
    reprojection: float = 0.02  # RANSAC tolerance, in units of the crop's longer side


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class _Arrays:
    def __init__(self, descs: Sequence[Descriptor]) -> None:
        n = len(descs)
        self.p = np.array([d.phash for d in descs], dtype=np.uint64).reshape(n, _NF)
        self.d = np.array([d.dhash for d in descs], dtype=np.uint64).reshape(n, _NF)
        width = len(descs[0].colour) // _NF if n else 0
        self.c = (
            np.frombuffer(b"".join(d.colour for d in descs), dtype=np.uint8)
            .reshape(n, _NF, width)
            .astype(np.int16)
        )
        self.informative = np.array([d.informative for d in descs], dtype=bool)


def candidate_pairs(arrays: _Arrays, t: Thresholds) -> list[tuple[int, int, int]]:
    """(pHash distance, i, j), i < j, closest first: pairs worth verifying."""
    idx = np.flatnonzero(arrays.informative)
    out: list[tuple[int, int, int]] = []
    for start in range(0, len(idx), _BLOCK):
        rows = idx[start : start + _BLOCK]
        cols = idx[start:]
        pd = np.bitwise_count(arrays.p[rows, None, :, None] ^ arrays.p[None, cols, None, :])
        pd = pd.reshape(len(rows), len(cols), _NF * _NF)
        best = pd.argmin(axis=2)
        dist = np.take_along_axis(pd, best[..., None], axis=2)[..., 0]
        ri, ci = np.nonzero(dist <= t.phash)
        i, j = rows[ri], cols[ci]
        keep = j > i
        ri, ci, i, j = ri[keep], ci[keep], i[keep], j[keep]
        fa, fb = np.divmod(best[ri, ci], _NF)
        d_dist = np.bitwise_count(arrays.d[i, fa] ^ arrays.d[j, fb])
        c_dist = np.abs(arrays.c[i, fa] - arrays.c[j, fb]).mean(axis=-1)
        ok = (d_dist <= t.dhash) & (c_dist <= t.colour)
        out.extend(zip(dist[ri, ci][ok].tolist(), i[ok].tolist(), j[ok].tolist(), strict=True))
    out.sort()
    return out


class _Verifier:
    """ORB agreement of two crops, decoded once per crop and cached per pair."""

    def __init__(self, descs: Sequence[Descriptor], t: Thresholds) -> None:
        self.descs = descs
        self.t = t
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._seen: dict[tuple[int, int], bool] = {}
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)

    def _get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._decoded:
            d = self.descs[i]
            pts = np.frombuffer(d.points, dtype=np.float16).reshape(-1, 2).astype(np.float32)
            feats = np.frombuffer(d.features, dtype=np.uint8).reshape(-1, 32)
            self._decoded[i] = (pts, feats)
        return self._decoded[i]

    def __call__(self, i: int, j: int) -> bool:
        key = (i, j) if i < j else (j, i)
        if key not in self._seen:
            self._seen[key] = self._check(*key)
        return self._seen[key]

    def _check(self, i: int, j: int) -> bool:
        (pa, fa), (pb, fb) = self._get(i), self._get(j)
        if len(fa) < self.t.inliers or len(fb) < self.t.inliers:
            return False
        matches = [m for m in self._matcher.match(fa, fb) if m.distance <= self.t.match_distance]
        if len(matches) < self.t.inliers:
            return False
        src = pa[[m.queryIdx for m in matches]]
        dst = pb[[m.trainIdx for m in matches]]
        transform, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.t.reprojection
        )
        if transform is None or inliers is None:
            return False
        scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
        return 0.4 < scale < 2.5 and int(inliers.sum()) >= self.t.inliers


def cluster(
    descs: Sequence[Descriptor],
    thresholds: Thresholds | None = None,
    *,
    must_link: Iterable[tuple[int, int]] = (),
    cannot_link: Iterable[tuple[int, int]] = (),
) -> list[int]:
    """A label per descriptor: the smallest index of its cluster (a singleton labels itself).

    ``descs`` are distinct images (byte-identical crops are one image: the caller dedupes by
    sha256 first). Indices in the link lists refer to ``descs``.
    """
    t = thresholds or Thresholds()
    n = len(descs)
    if n == 0:
        return []
    arrays = _Arrays(descs)
    verified = _Verifier(descs, t)
    root = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    forbidden: dict[int, set[int]] = {}
    for a, b in cannot_link:
        if a != b:
            forbidden.setdefault(a, set()).add(b)
            forbidden.setdefault(b, set()).add(a)

    def join(ra: int, rb: int) -> None:
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        for m in members[gone]:
            root[m] = keep
        members[keep].extend(members.pop(gone))

    def blocked(ra: int, rb: int) -> bool:
        small, big = sorted((ra, rb), key=lambda r: len(members[r]))
        other = set(members[big])
        return any(forbidden.get(m, set()) & other for m in members[small])

    for a, b in must_link:
        if root[a] != root[b]:
            join(root[a], root[b])
    for _dist, i, j in candidate_pairs(arrays, t):
        ri, rj = root[i], root[j]
        if ri == rj or blocked(ri, rj):
            continue
        if not verified(i, j):
            continue
        if (ri, rj) != (i, j) and not verified(ri, rj):
            continue
        join(ri, rj)
    return root
