"""Deterministic, stratified, version-stable train/val/test assignment.

The unit of assignment is a *group*: a figure (all its panels, and so all their questions, go
to one split) or a whole book. Nothing is ever split by question. Units that show one picture
are one group (issue 13): the union of the unit, every crop file (sha256), every
near-duplicate cluster and, under the book rule, the work whose editions the books are. A
picture reused in another figure, book or edition therefore never lands in two splits.

- Deterministic: groups are visited in the order of sha256(seed, group key), so the same seed
  and the same membership give the same splits on any machine.
- Stratified by modality: each modality keeps its own running counts, and each new group goes
  to the split furthest below its target share within that modality.
- Stable across versions: a group already present in the parent release keeps the parent's
  split, and only new groups are placed (counting the inherited ones towards the targets).

Memory: one small tuple per pair (ids and a modality), never the rows themselves.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from curation.release.records import SPLITS, GroupInfo

RULES = ("figure", "book")
DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


class SplitError(ValueError):
    pass


@dataclass(frozen=True)
class SplitConfig:
    rule: str = "figure"
    seed: int = 0
    ratios: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATIOS))

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise SplitError(f"split rule must be one of {RULES}, not {self.rule!r}")
        if set(self.ratios) - set(SPLITS):
            raise SplitError(f"split names must be among {SPLITS}")
        if any(v < 0 for v in self.ratios.values()) or sum(self.ratios.values()) <= 0:
            raise SplitError("split ratios must be non-negative and not all zero")

    def as_dict(self) -> dict:
        total = sum(self.ratios.values())
        ratios = {s: round(self.ratios.get(s, 0.0) / total, 6) for s in SPLITS}
        return {"rule": self.rule, "seed": self.seed, "ratios": ratios, "unit": self.rule}


def _unit_key(info: GroupInfo, rule: str) -> str:
    if rule == "book":
        return f"work:{info.work_key}" if info.work_key else f"book:{info.book_key}"
    return f"figure:{info.figure_id}"


def _order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        parent = self.parent.setdefault(key, key)
        while parent != key:
            grand = self.parent[parent]
            self.parent[key] = grand
            key, parent = parent, grand
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _groups(
    groups: Iterable[GroupInfo], rule: str
) -> tuple[dict[str, list[int]], dict[str, Counter], dict[str, Any]]:
    """Members and modality votes per group (keyed by its smallest unit key), and what merged.

    A group made of one unit keeps that unit's key, so its place in the seeded order, and so
    its split, is what it was before duplicates were joined.
    """
    union = _Union()
    rows: list[tuple[int, str, str]] = []
    units_of: dict[str, set[str]] = defaultdict(set)
    books_of_work: dict[str, set[str]] = defaultdict(set)
    for info in groups:
        unit = _unit_key(info, rule)
        union.find(unit)
        for extra in (
            f"sha:{info.image_sha}" if info.image_sha else "",
            f"cluster:{info.cluster}" if info.cluster else "",
        ):
            if extra:
                union.union(unit, extra)
                units_of[extra].add(unit)
        if rule == "book" and info.work_key:
            books_of_work[info.work_key].add(info.book_key)
        rows.append((info.pair_id, unit, info.modality))
    # Name each group by its smallest unit key (sha/cluster keys only link units together).
    name: dict[str, str] = {}
    for _pair, unit, _mod in rows:
        root = union.find(unit)
        if root not in name or unit < name[root]:
            name[root] = unit
    members: dict[str, list[int]] = defaultdict(list)
    votes: dict[str, Counter] = defaultdict(Counter)
    units: set[str] = set()
    for pair_id, unit, modality in rows:
        key = name[union.find(unit)]
        members[key].append(pair_id)
        votes[key][modality] += 1
        units.add(unit)
    merged = {
        "units": len(units),
        "groups": len(members),
        "identical_images": sum(
            1 for k, u in units_of.items() if k.startswith("sha:") and len(u) > 1
        ),
        "duplicate_clusters": sum(
            1 for k, u in units_of.items() if k.startswith("cluster:") and len(u) > 1
        ),
        "works_with_editions": sum(1 for books in books_of_work.values() if len(books) > 1),
    }
    return members, votes, merged


def assign_splits(
    groups: Iterable[GroupInfo],
    config: SplitConfig,
    inherited: Mapping[int, str] | None = None,
    *,
    stats: dict[str, Any] | None = None,
) -> dict[int, str]:
    """Map every pair id to a split. ``inherited``: pair id -> split in the parent release.

    ``stats``, when given, is filled with what was merged (for the dataset card).
    """
    inherited = inherited or {}
    total = sum(config.ratios.values())
    ratios = {s: config.ratios.get(s, 0.0) / total for s in SPLITS}

    members, modality_votes, merged = _groups(groups, config.rule)

    # A figure's stratum is its most common modality (ties broken by name, for determinism).
    # Whole books are too few and too mixed to stratify: they share one stratum.
    stratum = {
        key: "*" if config.rule == "book" else min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        for key, votes in modality_votes.items()
    }
    assigned: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    group_split: dict[str, str] = {}
    fresh: list[str] = []
    moved = 0
    for key, pair_ids in members.items():
        old = Counter(inherited[p] for p in pair_ids if p in inherited)
        if old:
            # A group whose pairs the parent had in several splits (duplicates found since)
            # goes where most of them were: a leak-free release beats a stable one.
            split = min(old.items(), key=lambda kv: (-kv[1], SPLITS.index(kv[0])))[0]
            moved += sum(n for s, n in old.items() if s != split)
            group_split[key] = split
            assigned[stratum[key]][split] += len(pair_ids)
        else:
            fresh.append(key)

    for key in sorted(fresh, key=lambda k: _order(config.seed, k)):
        counts = assigned[stratum[key]]
        size = len(members[key])
        after = sum(counts.values()) + size
        split = max(SPLITS, key=lambda s: (ratios[s] * after - counts[s], -SPLITS.index(s)))
        if ratios[split] == 0:
            split = max(SPLITS, key=lambda s: ratios[s])
        group_split[key] = split
        counts[split] += size

    if stats is not None:
        stats.update(merged, inherited_moved=moved)
    return {p: group_split[key] for key, pair_ids in members.items() for p in pair_ids}
