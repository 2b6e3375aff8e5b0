"""What changed between two versions, from their frozen membership and fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class ReleaseDiff:
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    moved: list[tuple[int, str, str]] = field(default_factory=list)  # (pair id, old, new split)
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "moved": [{"pair": p, "from": a, "to": b} for p, a, b in self.moved],
            "unchanged": self.unchanged,
        }


def diff_members(
    old: Mapping[int, tuple[str, str]], new: Mapping[int, tuple[str, str]]
) -> ReleaseDiff:
    """``old``/``new``: pair id -> (split, fingerprint)."""
    result = ReleaseDiff()
    for pair_id in sorted(new.keys() - old.keys()):
        result.added.append(pair_id)
    for pair_id in sorted(old.keys() - new.keys()):
        result.removed.append(pair_id)
    for pair_id in sorted(old.keys() & new.keys()):
        (old_split, old_fp), (new_split, new_fp) = old[pair_id], new[pair_id]
        if old_split != new_split:
            result.moved.append((pair_id, old_split, new_split))
        if old_fp != new_fp:
            result.changed.append(pair_id)
        elif old_split == new_split:
            result.unchanged += 1
    return result
