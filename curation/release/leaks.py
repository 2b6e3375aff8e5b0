"""The last guard against leakage: read back the written rows and refuse a leaking release.

The splitter already keeps each picture in one split; this check does not trust it. It reads
``pairs.jsonl`` and ``vqa.jsonl`` as written and fails the build when one image sha256, or one
key of the caller's (a near-duplicate cluster, a work under the book rule), appears in two
splits. Memory: one small entry per distinct key.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from curation.release.writer import ReleaseBuildError

_EXAMPLES = 5


class LeakError(ReleaseBuildError):
    """A picture (by sha256, duplicate cluster or work) is in more than one split."""


def _sha(image: str) -> str:
    return posixpath.splitext(posixpath.basename(image))[0]


def check_leaks(root: Path, keys: Mapping[int, Sequence[str]] | None = None) -> int:
    """Raise ``LeakError`` naming the leaks; returns how many rows were checked.

    ``keys``: pair id -> extra group keys, e.g. ``("cluster:<sha>", "work:3")``.
    """
    keys = keys or {}
    seen: dict[str, tuple[str, str]] = {}  # key -> (split, where first seen)
    leaks: dict[str, list[str]] = {}
    rows = 0
    for name, id_field in (("pairs.jsonl", "id"), ("vqa.jsonl", "pair_id")):
        path = Path(root) / name
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                rows += 1
                ref = str(row[id_field])
                pair_id = int(ref.lstrip("p")) if ref.lstrip("p").isdigit() else None
                split = row["split"]
                for key in (f"image {_sha(row['image'])}", *keys.get(pair_id, ())):
                    first = seen.setdefault(key, (split, f"pair {ref}"))
                    if first[0] != split and key not in leaks:
                        leaks[key] = [f"{first[0]} ({first[1]})", f"{split} (pair {ref})"]
    if leaks:
        shown = "; ".join(
            f"{key.replace(':', ' ', 1)} is in {' and '.join(where)}"
            for key, where in list(leaks.items())[:_EXAMPLES]
        )
        more = f" and {len(leaks) - _EXAMPLES} more" if len(leaks) > _EXAMPLES else ""
        raise LeakError(
            f"Refused: {len(leaks)} picture(s) would be in two splits, so test items would be "
            f"seen in training: {shown}{more}."
        )
    return rows
