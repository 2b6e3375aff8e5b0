"""The real-image development set: cut the files named in ``manifest.json`` out of fetched
repositories into a local cache, with each picture's class, source and split.

The pictures are not committed (most of their licences do not allow it); the manifest says
where each came from, at which commit, under which terms. Fetch the repositories first (the
search tool's ``fetch``, or ``git clone --mirror`` of each ``repo`` into
``$MMSKIN_MIRROR/owner+name/repo``), then::

    python -m curation.extract.modality.devset --out var/modality-devset

A file is used whole, cut into a grid of tiles (a large slide or dermoscopy image gives
several fields of view), or split on its white gutters (a sample sheet of photographs).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

MAX_SIDE = 512  # cached pictures are downscaled to this: panels in a book are about this size
MIN_SIDE = 48  # a gutter-split piece smaller than this is a label or a margin, not a picture
BLANK = 0.97  # a tile whose share of near-white pixels is above this is bare glass or paper


@dataclass(frozen=True)
class Item:
    """One picture of the set, as cached."""

    id: str
    path: str  # file name inside the cache
    label: str
    source: str  # the repository: the unit of leave-source-out
    split: str  # "dev" or "heldout"
    tags: tuple[str, ...]
    origin: str  # repo:path of the file it was cut from: tiles of one file stay in one fold


def manifest() -> dict:
    """The committed manifest."""
    text = resources.files(__package__).joinpath("manifest.json").read_text("utf-8")
    return json.loads(text)


def mirror_dir(repo: str, root: str | os.PathLike) -> Path:
    base = Path(root) / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def read_blob(repo: str, commit: str, path: str, root: str | os.PathLike) -> bytes:
    """The file's bytes at that commit, from the local bare mirror."""
    git = ["git", "--git-dir", str(mirror_dir(repo, root)), "show", f"{commit}:{path}"]
    return subprocess.run(git, check=True, capture_output=True).stdout


def tiles(img: Image.Image, rows: int, cols: int) -> list[Image.Image]:
    """A rows x cols grid of equal tiles, leaving out bare background."""
    w, h = img.size
    out = []
    for r in range(rows):
        for c in range(cols):
            box = (c * w // cols, r * h // rows, (c + 1) * w // cols, (r + 1) * h // rows)
            tile = img.crop(box)
            if _white_share(tile) <= BLANK:
                out.append(tile)
    return out


def gutter_split(img: Image.Image, white: int = 235, min_side: int = MIN_SIDE) -> list[Image.Image]:
    """Pieces of a sample sheet between rows and columns that are (nearly) all white.

    Rows first, then columns inside each band; a piece that is mostly white (a title, a
    caption strip) or too small is left out.
    """
    a = np.asarray(img.convert("L"))
    pieces = []
    for y0, y1 in _runs(np.mean(a > white, axis=1) < 0.97):
        band = a[y0:y1]
        for x0, x1 in _runs(np.mean(band > white, axis=0) < 0.97):
            if min(x1 - x0, y1 - y0) < min_side:
                continue
            piece = img.crop((x0, y0, x1, y1))
            if _white_share(piece) < 0.5:
                pieces.append(piece)
    return pieces


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate([*mask.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _white_share(img: Image.Image) -> float:
    a = np.asarray(img.convert("RGB"))
    return float((a.min(axis=2) > 225).mean())


def cut(entry: dict, data: bytes) -> list[Image.Image]:
    """The pictures one manifest entry gives."""
    img = Image.open(io.BytesIO(data))
    img.load()
    img = img.convert("RGB")
    kind = entry.get("cut", {}).get("kind", "whole")
    if kind == "whole":
        return [img]
    if kind == "tiles":
        return tiles(img, entry["cut"]["rows"], entry["cut"]["cols"])
    if kind == "grid":
        return gutter_split(img)
    raise ValueError(f"unknown cut kind {kind!r} in the manifest")


def build(out: str | os.PathLike, root: str | os.PathLike) -> list[Item]:
    """Cut every entry into ``out`` and write ``out/index.jsonl``; returns the items."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for entry in manifest()["entries"]:
        data = read_blob(entry["repo"], entry["commit"], entry["path"], root)
        kind = json.dumps(entry.get("cut", {}), sort_keys=True)
        for n, img in enumerate(cut(entry, data)):
            key = f"{entry['repo']}:{entry['commit']}:{entry['path']}:{kind}:{n}"
            iid = hashlib.sha256(key.encode()).hexdigest()[:16]
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            name = f"{iid}.png"
            img.save(out / name)
            items.append(
                Item(
                    iid,
                    name,
                    entry["class"],
                    entry["repo"],
                    entry["split"],
                    tuple(entry.get("tags", ())),
                    # pieces of a sample sheet are separate photographs; tiles share a slide
                    f"{entry['repo']}:{entry['path']}" + (f"#{n}" if "grid" in kind else ""),
                )
            )
    with open(out / "index.jsonl", "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.__dict__ | {"tags": list(it.tags)}) + "\n")
    return items


def load(cache: str | os.PathLike) -> Iterator[tuple[Item, Image.Image]]:
    """The cached items with their pictures (``build`` first)."""
    cache = Path(cache)
    for line in (cache / "index.jsonl").read_text("utf-8").splitlines():
        d = json.loads(line)
        d["tags"] = tuple(d["tags"])
        it = Item(**d)
        with Image.open(cache / it.path) as im:
            yield it, im.convert("RGB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("MMSKIN_DEVSET", "var/modality-devset"))
    p.add_argument("--mirror", default=os.environ.get("MMSKIN_MIRROR", "/work/.mirror"))
    args = p.parse_args(argv)
    items = build(args.out, args.mirror)
    counts: dict[tuple[str, str], int] = {}
    for it in items:
        counts[(it.label, it.split)] = counts.get((it.label, it.split), 0) + 1
    for (label, split), n in sorted(counts.items()):
        print(f"{label:13s} {split:8s} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
