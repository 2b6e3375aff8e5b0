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

Incremental (``update``): joins happen only along verified candidate pairs and must-links,
and every guard looks only at the two clusters an edge joins. So the crops that such edges
connect (a *component*) cluster the same whatever else is in the index. A new book's crops are
compared with the index (new x all, not all x all); only they and the components they have a
verified pair with are clustered again, and the result equals clustering everything.
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


def candidate_pairs(
    arrays: _Arrays, t: Thresholds, among: Sequence[int] | None = None
) -> list[tuple[int, int, int]]:
    """(pHash distance, i, j), i < j, closest first: pairs worth verifying.

    ``among``: only the pairs with at least one crop in it (a new book against the index).
    """
    idx = np.flatnonzero(arrays.informative)
    chosen = np.zeros(len(arrays.informative), dtype=bool)
    if among is not None:
        chosen[np.asarray(list(among), dtype=np.int64)] = True
    sources = idx if among is None else idx[chosen[idx]]
    out: list[tuple[int, int, int]] = []
    for start in range(0, len(sources), _BLOCK):
        rows = sources[start : start + _BLOCK]
        cols = idx[start:] if among is None else idx
        pd = np.bitwise_count(arrays.p[rows, None, :, None] ^ arrays.p[None, cols, None, :])
        pd = pd.reshape(len(rows), len(cols), _NF * _NF)
        best = pd.argmin(axis=2)
        dist = np.take_along_axis(pd, best[..., None], axis=2)[..., 0]
        ri, ci = np.nonzero(dist <= t.phash)
        i, j = rows[ri], cols[ci]
        # each unordered pair once: i < j, or (new x all) j outside ``among``
        keep = (j > i) if among is None else ((j > i) | ~chosen[j])
        ri, ci, i, j = ri[keep], ci[keep], i[keep], j[keep]
        fa, fb = np.divmod(best[ri, ci], _NF)
        d_dist = np.bitwise_count(arrays.d[i, fa] ^ arrays.d[j, fb])
        c_dist = np.abs(arrays.c[i, fa] - arrays.c[j, fb]).mean(axis=-1)
        ok = (d_dist <= t.dhash) & (c_dist <= t.colour)
        lo, hi = np.minimum(i, j)[ok], np.maximum(i, j)[ok]
        out.extend(zip(dist[ri, ci][ok].tolist(), lo.tolist(), hi.tolist(), strict=True))
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


@dataclass(frozen=True)
class Clustering:
    """Per crop: its cluster and its component, each named by its smallest index.

    A component is what verified candidate pairs and must-links connect; a cluster lies in
    one component (the guards may split a component into several clusters).
    """

    labels: list[int]
    components: list[int]


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
    return cluster_components(
        descs, thresholds, must_link=must_link, cannot_link=cannot_link
    ).labels


def cluster_components(
    descs: Sequence[Descriptor],
    thresholds: Thresholds | None = None,
    *,
    must_link: Iterable[tuple[int, int]] = (),
    cannot_link: Iterable[tuple[int, int]] = (),
) -> Clustering:
    """``cluster`` of every descriptor, with the components ``update`` needs later."""
    t = thresholds or Thresholds()
    n = len(descs)
    if n == 0:
        return Clustering([], [])
    arrays = _Arrays(descs)
    verified = _Verifier(descs, t)
    root = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    forbidden: dict[int, set[int]] = {}
    for a, b in cannot_link:
        if a != b:
            forbidden.setdefault(a, set()).add(b)
            forbidden.setdefault(b, set()).add(a)
    parent = list(range(n))  # components: union-find whose root is the smallest index

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def unite(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

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
        unite(a, b)
        if root[a] != root[b]:
            join(root[a], root[b])
    for _dist, i, j in candidate_pairs(arrays, t):
        ri, rj = root[i], root[j]
        if ri == rj:  # one cluster, so one component already
            continue
        if not verified(i, j):
            continue
        unite(i, j)
        if blocked(ri, rj):
            continue
        if (ri, rj) != (i, j) and not verified(ri, rj):
            continue
        join(ri, rj)
    return Clustering(root, [find(i) for i in range(n)])


def update(
    descs: Sequence[Descriptor],
    previous: Sequence[tuple[int, int] | None],
    thresholds: Thresholds | None = None,
    *,
    must_link: Iterable[tuple[int, int]] = (),
    cannot_link: Iterable[tuple[int, int]] = (),
    around: Iterable[int] = (),
) -> tuple[Clustering, list[int]]:
    """The clustering of ``descs`` given an earlier one, and the indices it clustered again.

    ``previous[k]`` is crop k's (cluster, component) from ``cluster_components`` over the
    crops that have one (indices into ``descs``), or None for a crop added since. The new
    crops are compared with every crop; they, the components they have a verified candidate
    pair or a must-link with, and the components of ``around`` (crops an expert verdict was
    just given on) are clustered again; the rest is kept. The result equals
    ``cluster_components(descs, ...)`` when ``previous`` came from the same thresholds and
    links (a new verdict must name its crops in ``around``).
    """
    t = thresholds or Thresholds()
    must_link, cannot_link = list(must_link), list(cannot_link)
    new = [k for k, p in enumerate(previous) if p is None]
    touched = {previous[k][1] for k in around if previous[k] is not None}
    new_set = set(new)
    if new:
        verified = _Verifier(descs, t)
        for _dist, i, j in candidate_pairs(_Arrays(descs), t, among=new):
            for old, other in ((i, j), (j, i)):
                if old not in new_set and other in new_set:
                    comp = previous[old][1]
                    if comp not in touched and verified(i, j):
                        touched.add(comp)
    for a, b in must_link:  # a verdict joins its two components
        ends = [previous[k][1] for k in (a, b) if previous[k] is not None]
        if len(ends) == 1 or (len(ends) == 2 and ends[0] != ends[1]):
            touched.update(ends)
    redo = [k for k, p in enumerate(previous) if p is None or p[1] in touched]
    labels = [p[0] if p is not None else k for k, p in enumerate(previous)]
    comps = [p[1] if p is not None else k for k, p in enumerate(previous)]
    if not redo:
        return Clustering(labels, comps), []
    at = {k: pos for pos, k in enumerate(redo)}

    def inside(links: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(at[a], at[b]) for a, b in links if a in at and b in at]

    sub = cluster_components(
        [descs[k] for k in redo], t, must_link=inside(must_link), cannot_link=inside(cannot_link)
    )
    for pos, k in enumerate(redo):
        labels[k], comps[k] = redo[sub.labels[pos]], redo[sub.components[pos]]
    return Clustering(labels, comps), redo
