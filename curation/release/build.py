"""selector output -> splitter -> canonical writer -> formats -> card -> manifest -> archive."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.release.archive import write_archive
from curation.release.card import write_card
from curation.release.formats import write_formats
from curation.release.leaks import check_leaks
from curation.release.manifest import SCHEMA_VERSION, write_manifest
from curation.release.records import PairRecord, ReleaseMeta
from curation.release.writer import LocalImage, OpenImage, ReleaseWriter

RELEASE_DIR = "release"
ARCHIVE = "archive.tar"

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class BuildResult:
    counts: dict[str, Any]
    manifest_sha256: str
    files: int
    archive_sha256: str
    archive_size: int


def archive_prefix(meta: ReleaseMeta) -> str:
    return f"{meta.name}-{meta.version}"


def build(
    workdir: Path,
    meta: ReleaseMeta,
    pairs: Iterable[PairRecord],
    splits: Mapping[int, str],
    open_image: OpenImage,
    *,
    local_image: LocalImage | None = None,
    on_pair: Callable[[PairRecord, str, str], None] | None = None,
    progress: Progress | None = None,
    total: int | None = None,
    leak_keys: Mapping[int, Sequence[str]] | None = None,
    merged: Mapping[str, Any] | None = None,
) -> BuildResult:
    """Write the release folder ``workdir/release`` and ``workdir/archive.tar``.

    Pairs without an entry in ``splits`` are skipped (they joined the selection after the
    splits were drawn). ``on_pair(pair, split, fingerprint)`` sees every pair written.
    ``local_image(storage path)`` gives a crop's local file, which is then hard-linked.
    ``leak_keys`` (pair id -> cluster / work keys) and ``merged`` (the splitter's stats): see
    ``leaks.check_leaks`` and the card's "Duplicates" section.
    """
    report = progress or (lambda phase, fraction: None)
    root = Path(workdir) / RELEASE_DIR
    writer = ReleaseWriter(root, open_image, local_image)
    try:
        done = 0
        for pair in pairs:
            split = splits.get(pair.id)
            if split is None:
                continue
            fingerprint = writer.add(pair, split)
            if on_pair is not None:
                on_pair(pair, split, fingerprint)
            done += 1
            if total and done % 500 == 0:
                report("records", 0.75 * done / total)
    finally:
        writer.close()
    counts = writer.counts.as_dict()
    # -- leak guard (issue 13): refuse a release where one picture is in two splits --------
    check_leaks(root, leak_keys)
    if merged is not None:
        counts["duplicates"] = dict(merged)
    # ---------------------------------------------------------------------------------------
    report("formats", 0.75)
    write_formats(root, name=meta.name, version=meta.version)
    write_card(root, meta, counts)
    report("manifest", 0.85)
    header = {
        "schema_version": SCHEMA_VERSION,
        "name": meta.name,
        "version": meta.version,
        "created_at": meta.created_at,
        "created_by": meta.created_by,
        "description": meta.description,
        "filter": meta.filter,
        "split": meta.split,
        "parent": meta.parent,
        "counts": counts,
    }
    manifest_sha, files = write_manifest(root, header)
    report("archive", 0.9)
    mtime = int(datetime.fromisoformat(meta.created_at).timestamp())
    archive_sha, archive_size = write_archive(
        root, Path(workdir) / ARCHIVE, prefix=archive_prefix(meta), mtime=mtime
    )
    report("done", 1.0)
    return BuildResult(counts, manifest_sha, files, archive_sha, archive_size)
