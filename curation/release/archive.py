"""One deterministic tar of a release: sorted entries, fixed owner, mode and mtime.

Two builds of the same release folder give byte-identical archives. Uncompressed: the images
are PNG/JPEG already, and a plain tar can be served with HTTP ranges straight from disk.

The bytes are exactly what ``tarfile`` writes in GNU format (a header block per member, the
data padded to 512 bytes, two zero blocks, padding to a 10 KiB record), but each file is read
once in large blocks that go to the archive's sha256, to the archive, and, for an image, to a
check of the sha256 its name claims (the writer may have hard-linked it unread).
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


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.GNU_FORMAT, tarfile.ENCODING, "surrogateescape")


def write_archive(root: Path, target: Path, *, prefix: str, mtime: int) -> tuple[str, int]:
    """Tar every file of ``root`` under ``prefix/``; return (sha256, size) of the archive.

    Raises ``ReleaseBuildError`` when an image's bytes do not match the sha256 in its name.
    """
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    offset = 0
    with open(target, "wb", buffering=_OUT_BUFFER) as out:

        def emit(data) -> None:
            nonlocal offset
            digest.update(data)
            out.write(data)
            offset += len(data)

        for rel in walk_files(root):
            with open(root / rel, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                emit(_header(f"{prefix}/{rel}", size, mtime))
                expected = named_sha256(rel)
                check = hashlib.sha256() if expected else None
                left = size
                while left:
                    n = fh.readinto(buffer)
                    if not n:
                        break
                    n = min(n, left)
                    chunk = view[:n]
                    if check is not None:
                        check.update(chunk)
                    emit(chunk)
                    left -= n
            if left:
                raise ReleaseBuildError(f"{rel} changed while the archive was written")
            if check is not None and check.hexdigest() != expected:
                raise ReleaseBuildError(f"{rel} does not match the sha256 in its name")
            if size % tarfile.BLOCKSIZE:
                emit(tarfile.NUL * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE))
        emit(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        if offset % tarfile.RECORDSIZE:
            emit(tarfile.NUL * (tarfile.RECORDSIZE - offset % tarfile.RECORDSIZE))
    return digest.hexdigest(), offset
