"""One deterministic tar of a release: sorted entries, fixed owner, mode and mtime.

Two builds of the same release folder give byte-identical archives. Uncompressed: the images
are PNG/JPEG already, and a plain tar can be served with HTTP ranges straight from disk.

Written by ``tarfile`` (GNU format) through two thin wrappers, so each file is read once in
large blocks that go to the archive's sha256, to the archive, and, for an image, to a check of
the sha256 its name claims (the writer may have hard-linked it unread).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from curation.release.manifest import named_sha256, walk_files
from curation.release.writer import ReleaseBuildError

_BLOCK = 1024 * 1024
_OUT_BUFFER = 4 * 1024 * 1024


class _HashingWriter:
    """The archive file, hashed and counted as ``tarfile`` writes it."""

    def __init__(self, out) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.size


class _CheckingReader:
    """A member's file, hashed as ``tarfile`` reads it when its name claims a sha256."""

    def __init__(self, fh, check) -> None:
        self.fh, self.check = fh, check

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        if self.check is not None:
            self.check.update(data)
        return data


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(root: Path, target: Path, *, prefix: str, mtime: int) -> tuple[str, int]:
    """Tar every file of ``root`` under ``prefix/``; return (sha256, size) of the archive.

    Raises ``ReleaseBuildError`` when an image's bytes do not match the sha256 in its name.
    """
    with open(target, "wb", buffering=_OUT_BUFFER) as out:
        sink = _HashingWriter(out)
        with tarfile.open(
            fileobj=sink, mode="w", format=tarfile.GNU_FORMAT, copybufsize=_BLOCK
        ) as tar:
            for rel in walk_files(root):
                with open(root / rel, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    expected = named_sha256(rel)
                    reader = _CheckingReader(fh, hashlib.sha256() if expected else None)
                    try:
                        tar.addfile(_info(f"{prefix}/{rel}", size, mtime), reader)
                    except OSError as exc:  # tarfile: "unexpected end of data"
                        raise ReleaseBuildError(
                            f"{rel} changed while the archive was written"
                        ) from exc
                if expected and reader.check.hexdigest() != expected:
                    raise ReleaseBuildError(f"{rel} does not match the sha256 in its name")
    return sink.digest.hexdigest(), sink.size
