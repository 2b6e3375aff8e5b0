"""Deterministic, stratified, version-stable train/val/test assignment.

The unit of assignment is a *group*: a figure (all its panels, and so all their questions, go
to one split) or a whole book. Nothing is ever split by question.

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


def _group_key(info: GroupInfo, rule: str) -> str:
    return f"book:{info.book_key}" if rule == "book" else f"figure:{info.figure_id}"


def _order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def assign_splits(
    groups: Iterable[GroupInfo],
    config: SplitConfig,
    inherited: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Map every pair id to a split. ``inherited``: pair id -> split in the parent release."""
    inherited = inherited or {}
    total = sum(config.ratios.values())
    ratios = {s: config.ratios.get(s, 0.0) / total for s in SPLITS}

    members: dict[str, list[int]] = defaultdict(list)
    modality_votes: dict[str, Counter] = defaultdict(Counter)
    for info in groups:
        key = _group_key(info, config.rule)
        members[key].append(info.pair_id)
        modality_votes[key][info.modality] += 1

    # A figure's stratum is its most common modality (ties broken by name, for determinism).
    # Whole books are too few and too mixed to stratify: they share one stratum.
    stratum = {
        key: "*" if config.rule == "book" else min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        for key, votes in modality_votes.items()
    }
    assigned: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    group_split: dict[str, str] = {}
    fresh: list[str] = []
    for key, pair_ids in members.items():
        old = Counter(inherited[p] for p in pair_ids if p in inherited)
        if old:
            split = min(old.items(), key=lambda kv: (-kv[1], SPLITS.index(kv[0])))[0]
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

    return {p: group_split[key] for key, pair_ids in members.items() for p in pair_ids}
