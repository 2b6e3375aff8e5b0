"""Small streaming helpers: compact deterministic JSON lines, JSON arrays written item by item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def dumps(obj: Any) -> str:
    """One canonical JSON text: key order as built, no spaces, UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class JsonArrayWriter:
    """Writes ``[item,\\nitem,...]`` one item at a time, so the array never sits in memory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._fh.write("[")
        self.count = 0

    def write(self, item: Any) -> None:
        self._fh.write(",\n" if self.count else "\n")
        self._fh.write(dumps(item))
        self.count += 1

    def close(self) -> None:
        self._fh.write("\n]\n")
        self._fh.close()

    def __enter__(self) -> JsonArrayWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
