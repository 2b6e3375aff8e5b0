"""One deterministic tar of a release: sorted entries, fixed owner, mode and mtime.

Two builds of the same release folder give byte-identical archives. Uncompressed: the images
are PNG already, and a plain tar can be served with HTTP ranges straight from disk.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from curation.release.manifest import walk_files


class _HashingWriter:
    def __init__(self, fh) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._fh.write(data)


def write_archive(root: Path, target: Path, *, prefix: str, mtime: int) -> tuple[str, int]:
    """Tar every file of ``root`` under ``prefix/``; return (sha256, size) of the archive."""
    with open(target, "wb") as raw:
        out = _HashingWriter(raw)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            for rel in walk_files(root):
                path = root / rel
                info = tarfile.TarInfo(f"{prefix}/{rel}")
                info.size = path.stat().st_size
                info.mtime = mtime
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return out.digest.hexdigest(), out.size
