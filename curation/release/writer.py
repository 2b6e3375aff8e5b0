"""The canonical files of a release, written one pair at a time.

``ReleaseWriter.add`` appends a pair (with its VQA items) to ``pairs.jsonl``, ``vqa.jsonl`` and
``preferences.jsonl`` and puts its image once under its sha256. It returns a fingerprint of
everything written for that pair, which is what a diff between two versions compares.
Only counters (small, keyed by modality, book and split) are kept in memory.

Images: a crop already stored under its sha256 on the same local disk is hard-linked, not
copied (no byte is read or written; the storage never rewrites a content-addressed file, it
only adds new names). ``archive.write_archive`` reads every image once anyway and checks it
against its name there. Any other image is copied and hashed on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from curation.release.jsonio import dumps
from curation.release.records import PairRecord, VQARecord

OpenImage = Callable[[str], AbstractContextManager[BinaryIO]]
#: The local file of a storage path, or None when the storage has no local files (S3).
LocalImage = Callable[[str], str | os.PathLike[str] | None]

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_COPY_BLOCK = 1024 * 1024
CANONICAL_FILES = ("pairs.jsonl", "vqa.jsonl", "preferences.jsonl")


class ReleaseBuildError(Exception):
    """The data cannot be written as a release (a missing or corrupt image, a bad record)."""


@dataclass
class Counts:
    pairs: int = 0
    vqa: int = 0
    preferences: int = 0
    images: int = 0
    image_bytes: int = 0
    pairs_by_split: Counter = field(default_factory=Counter)
    vqa_by_split: Counter = field(default_factory=Counter)
    preferences_by_split: Counter = field(default_factory=Counter)
    preferences_by_source: Counter = field(default_factory=Counter)
    pairs_by_modality: Counter = field(default_factory=Counter)
    vqa_by_question_type: Counter = field(default_factory=Counter)
    # book id -> {"title", "pairs", "vqa", "by_split"}
    books: dict[int, dict[str, Any]] = field(default_factory=dict)
    modality_by_split: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def as_dict(self) -> dict[str, Any]:
        def plain(counter: Counter) -> dict[str, int]:
            return {k: counter[k] for k in sorted(counter)}

        return {
            "pairs": self.pairs,
            "vqa": self.vqa,
            "preferences": self.preferences,
            "images": self.images,
            "image_bytes": self.image_bytes,
            "pairs_by_split": plain(self.pairs_by_split),
            "vqa_by_split": plain(self.vqa_by_split),
            "preferences_by_split": plain(self.preferences_by_split),
            "preferences_by_source": plain(self.preferences_by_source),
            "pairs_by_modality": plain(self.pairs_by_modality),
            "modality_by_split": {
                m: plain(self.modality_by_split[m]) for m in sorted(self.modality_by_split)
            },
            "vqa_by_question_type": plain(self.vqa_by_question_type),
            "books": [
                {
                    "id": book_id,
                    "title": info["title"],
                    "pairs": info["pairs"],
                    "vqa": info["vqa"],
                    "by_split": plain(info["by_split"]),
                }
                for book_id, info in sorted(self.books.items())
            ],
        }


def preference_of(item: VQARecord) -> tuple[str, str, str] | None:
    """(chosen, rejected, source) when the expert's answer replaced the LLM's, else None.

    An edited item whose answer is unchanged (only the question was reworded) and a rejected
    item the expert gave no better answer for carry no preference.
    """
    if item.status not in ("edited", "rejected"):
        return None
    draft = (item.draft_answer or "").strip()
    final = (item.answer or "").strip()
    if not draft or not final or draft == final:
        return None
    source = "expert_edit" if item.status == "edited" else "expert_reject"
    return final, draft, source


class ReleaseWriter:
    def __init__(
        self, root: Path, open_image: OpenImage, local_image: LocalImage | None = None
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "images").mkdir(exist_ok=True)
        self._incoming = self.root / "images" / ".incoming"
        self._open_image = open_image
        self._local_image = local_image
        self._files = {
            name: open(self.root / name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            for name in CANONICAL_FILES
        }
        self.counts = Counts()
        self._closed = False

    # -- images ----------------------------------------------------------------------------
    def _copy_image(self, storage_path: str) -> str:
        base = posixpath.basename(storage_path)
        stem, ext = posixpath.splitext(base)
        ext = (ext or ".png").lower()
        expected = stem.lower() if _SHA_RE.fullmatch(stem.lower()) else None
        if expected:
            rel = f"images/{expected[:2]}/{expected}{ext}"
            target = self.root / rel
            if target.exists():
                return rel
            if self._link_image(storage_path, target):
                return rel
        digest = hashlib.sha256()
        size = 0
        try:
            with self._open_image(storage_path) as src, open(self._incoming, "wb") as out:
                while block := src.read(_COPY_BLOCK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        except FileNotFoundError as exc:
            raise ReleaseBuildError(f"image {storage_path} is missing from storage") from exc
        sha = digest.hexdigest()
        if expected and sha != expected:
            raise ReleaseBuildError(f"image {storage_path} does not match its sha256 name")
        rel = f"images/{sha[:2]}/{sha}{ext}"
        target = self.root / rel
        if target.exists():
            self._incoming.unlink()
            return rel
        target.parent.mkdir(exist_ok=True)
        os.replace(self._incoming, target)
        self.counts.images += 1
        self.counts.image_bytes += size
        return rel

    def _link_image(self, storage_path: str, target: Path) -> bool:
        """Hard-link a content-addressed crop; False when it has to be copied instead."""
        source = self._local_image(storage_path) if self._local_image else None
        if source is None:
            return False
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(source, target)
        except FileNotFoundError as exc:
            if not os.path.exists(source):
                raise ReleaseBuildError(f"image {storage_path} is missing from storage") from exc
            return False
        except OSError:  # another file system, no hard links there, or not allowed: copy
            return False
        self.counts.images += 1
        self.counts.image_bytes += target.stat().st_size
        return True

    # -- records ---------------------------------------------------------------------------
    def add(self, pair: PairRecord, split: str) -> str:
        """Write one pair and its VQA items; return the sha256 fingerprint of what was written."""
        if self._closed:
            raise ReleaseBuildError("the writer is closed")
        image = self._copy_image(pair.image)
        pair_id = f"p{pair.id}"
        record = {
            "id": pair_id,
            "image": image,
            "caption": pair.caption,
            "modality": pair.modality,
            "diagnosis": pair.diagnosis or None,
            "age": pair.age,
            "sex": pair.sex or None,
            "flags": list(pair.flags),
            "split": split,
            "provenance": {
                "book": {
                    "id": pair.book.id,
                    "title": pair.book.title,
                    "edition": pair.book.edition,
                    "sha256": pair.book.sha256,
                },
                "page": pair.page,
                "figure": {"id": pair.figure_id, "label": pair.figure_label},
                "panel": {"index": pair.panel_index, "letter": pair.panel_letter},
            },
            "review": {
                "status": pair.status,
                "edited": pair.status == "edited",
                "machine_caption": pair.machine_caption,
                "reviewed_at": pair.reviewed_at,
                "reviews": pair.reviews,
            },
        }
        fingerprint = hashlib.sha256()
        line = dumps(record)
        self._files["pairs.jsonl"].write(line + "\n")
        fingerprint.update(line.encode())

        c = self.counts
        c.pairs += 1
        c.pairs_by_split[split] += 1
        c.pairs_by_modality[pair.modality] += 1
        c.modality_by_split[pair.modality][split] += 1
        book = c.books.setdefault(
            pair.book.id, {"title": pair.book.title, "pairs": 0, "vqa": 0, "by_split": Counter()}
        )
        book["pairs"] += 1
        book["by_split"][split] += 1

        for item in pair.vqa:
            fingerprint.update(self._add_vqa(pair_id, image, split, item, book).encode())
        return fingerprint.hexdigest()

    def _add_vqa(self, pair_id: str, image: str, split: str, item: VQARecord, book) -> str:
        written = ""
        if item.status in ("accepted", "edited"):
            record = {
                "id": f"q{item.id}",
                "pair_id": pair_id,
                "image": image,
                "question_type": item.question_type,
                "question": item.question,
                "answer": item.answer,
                "split": split,
                "provenance": {
                    "generator": item.generator,
                    "prompt_version": item.prompt_version,
                    "status": item.status,
                    "edited": item.status == "edited",
                },
            }
            line = dumps(record)
            self._files["vqa.jsonl"].write(line + "\n")
            written += line
            self.counts.vqa += 1
            self.counts.vqa_by_split[split] += 1
            self.counts.vqa_by_question_type[item.question_type] += 1
            book["vqa"] += 1
        preference = preference_of(item)
        if preference is not None:
            chosen, rejected, source = preference
            record = {
                "id": f"q{item.id}",
                "pair_id": pair_id,
                "image": image,
                "question_type": item.question_type,
                "prompt": item.question,
                "chosen": chosen,
                "rejected": rejected,
                "source": source,
                "split": split,
            }
            line = dumps(record)
            self._files["preferences.jsonl"].write(line + "\n")
            written += line
            self.counts.preferences += 1
            self.counts.preferences_by_split[split] += 1
            self.counts.preferences_by_source[source] += 1
        return written

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fh in self._files.values():
            fh.close()
        with contextlib.suppress(FileNotFoundError):
            self._incoming.unlink()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
