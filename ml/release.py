"""Reading a dataset release folder (the contract in DESIGN.md: manifest, jsonl files, images).

A release is verified against its manifest before anything trains on it: a truncated download
or a hand-edited file must fail loudly here, not surface as a subtly different model later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_SCHEMA_VERSIONS = (1,)


class ReleaseError(Exception):
    """The release folder is missing, malformed or does not match its manifest."""


@dataclass
class Pair:
    """One reviewed image-caption pair."""

    id: str
    image: str
    caption: str
    modality: str
    split: str
    diagnosis: str | None = None
    age: Any = None
    sex: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class VQAItem:
    """One reviewed question-answer item about a pair's image."""

    id: str
    pair_id: str
    image: str
    question: str
    answer: str
    split: str
    question_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Preference:
    """An expert correction: chosen = expert text, rejected = the LLM draft."""

    pair_id: str
    image: str
    prompt: str
    chosen: str
    rejected: str
    source: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_release(root: Path, manifest: dict[str, Any]) -> None:
    """Check every file listed in the manifest exists with the right size and sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ReleaseError("manifest.json has no 'files' mapping")
    problems: list[str] = []
    for rel, meta in sorted(files.items()):
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            problems.append(f"{rel}: path escapes the release folder")
            continue
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = path.stat().st_size
        if "size" in meta and int(meta["size"]) != size:
            problems.append(f"{rel}: size {size} != manifest {meta['size']}")
            continue
        digest = sha256_file(path)
        if digest != meta.get("sha256"):
            problems.append(f"{rel}: sha256 {digest} != manifest {meta.get('sha256')}")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ReleaseError(f"release {root} does not verify: {shown}{more}")


def _split_known(raw: dict[str, Any], cls: type, name_map: dict[str, str] | None = None) -> Any:
    fields_ = set(cls.__dataclass_fields__) - {"extra"}
    known = {k: v for k, v in raw.items() if k in fields_}
    extra = {k: v for k, v in raw.items() if k not in fields_}
    try:
        return cls(**known, extra=extra)
    except TypeError as exc:
        raise ReleaseError(f"{cls.__name__} record is missing fields: {exc}") from exc


class Release:
    """A verified release folder, with typed access to its records."""

    def __init__(self, root: str | Path, verify: bool = True) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise ReleaseError(f"{self.root} has no manifest.json")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise ReleaseError(f"manifest.json is not JSON: {exc}") from exc
        schema = self.manifest.get("schema_version")
        if schema not in SUPPORTED_SCHEMA_VERSIONS:
            raise ReleaseError(
                f"schema_version {schema!r} not supported (known {SUPPORTED_SCHEMA_VERSIONS})"
            )
        if verify:
            verify_release(self.root, self.manifest)

    @property
    def name(self) -> str:
        """`name@version`, for logs and run records."""
        return f"{self.manifest.get('name', '?')}@{self.manifest.get('version', '?')}"

    def _jsonl(self, rel: str) -> Iterator[dict[str, Any]]:
        path = self.root / rel
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReleaseError(f"{rel}:{lineno}: {exc}") from exc

    def pairs(self, split: str | None = None) -> list[Pair]:
        """Pairs, optionally of one split."""
        items = [_split_known(r, Pair) for r in self._jsonl("pairs.jsonl")]
        return [p for p in items if split is None or p.split == split]

    def vqa(self, split: str | None = None) -> list[VQAItem]:
        """VQA items, optionally of one split."""
        items = [_split_known(r, VQAItem) for r in self._jsonl("vqa.jsonl")]
        return [v for v in items if split is None or v.split == split]

    def preferences(self, split: str | None = None) -> list[Preference]:
        """Preference pairs; their split is the split of their pair when not given inline."""
        items = [_split_known(r, Preference) for r in self._jsonl("preferences.jsonl")]
        if split is None:
            return items
        pair_split = {p.id: p.split for p in self.pairs()}
        return [x for x in items if (x.split or pair_split.get(x.pair_id)) == split]

    def image_path(self, rel: str) -> Path:
        """Absolute path of an image referenced by a record."""
        path = (self.root / rel).resolve()
        if self.root.resolve() not in path.parents:
            raise ReleaseError(f"image path {rel!r} escapes the release folder")
        return path
