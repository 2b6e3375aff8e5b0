"""``manifest.json``: the release's metadata and the sha256 and size of every other file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_BLOCK = 1024 * 1024
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def walk_files(root: Path, rel: str = "") -> Iterator[str]:
    """Every file under ``root`` as a POSIX relative path, in a fixed (sorted) order."""
    with os.scandir(root / rel if rel else root) as entries:
        names = sorted(entries, key=lambda e: e.name)
    for entry in names:
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from walk_files(root, path)
        elif entry.is_file(follow_symlinks=False):
            yield path


def named_sha256(rel: str) -> str | None:
    """The sha256 an image's name claims (``images/ab/<sha256>.png``), else None."""
    if not rel.startswith("images/"):
        return None
    stem = rel.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem if _SHA_RE.fullmatch(stem) else None


def _file_entry(root: Path, rel: str) -> dict[str, Any]:
    path = root / rel
    size = path.stat().st_size
    # Images are named by their sha256; the archive checks each name against the bytes.
    sha = named_sha256(rel) or sha256_file(path)
    return {"sha256": sha, "size": size}


def write_manifest(root: Path, header: dict[str, Any]) -> tuple[str, int]:
    """Write the manifest, streaming the file list; return (sha256, number of files)."""
    target = root / MANIFEST
    count = 0
    with open(target, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("{\n")
        for key, value in header.items():
            fh.write(
                f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False, sort_keys=True)},\n"
            )
        fh.write(' "files": {')
        for rel in walk_files(root):
            if rel == MANIFEST:
                continue
            entry = json.dumps(_file_entry(root, rel), sort_keys=True)
            fh.write(("," if count else "") + f"\n  {json.dumps(rel)}: {entry}")
            count += 1
        fh.write("\n }\n}\n")
    return sha256_file(target), count


def verify(root: Path) -> list[str]:
    """Problems found checking every file against the manifest (an empty list: all good)."""
    manifest = json.loads((root / MANIFEST).read_text("utf-8"))
    problems = []
    listed = set()
    for rel, meta in manifest["files"].items():
        listed.add(rel)
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel}: size differs")
        elif sha256_file(path) != meta["sha256"]:
            problems.append(f"{rel}: sha256 differs")
    for rel in walk_files(root):
        if rel != MANIFEST and rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems
