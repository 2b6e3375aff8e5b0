"""Plain records the release pipeline consumes: what the selector reads, free of the ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class BookInfo:
    id: int
    title: str
    edition: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class VQARecord:
    """One reviewed VQA item; ``draft_*`` is the LLM's original text, kept unchanged."""

    id: int
    pair_id: int
    question_type: str
    question: str
    answer: str
    status: str  # accepted | edited | rejected
    generator: dict[str, Any] = field(default_factory=dict)
    prompt_version: str = ""
    draft_question: str = ""
    draft_answer: str = ""


@dataclass(frozen=True)
class PairRecord:
    """One pair as it ships: the panel image (a storage path), its text and provenance."""

    id: int
    image: str  # storage path of the content-addressed crop, e.g. crops/ab/<sha>.png
    caption: str
    modality: str
    book: BookInfo
    page: int
    figure_id: int
    figure_label: str
    panel_index: int
    panel_letter: str = ""
    diagnosis: str = ""
    age: int | None = None
    sex: str = ""
    flags: tuple[str, ...] = ()
    status: str = "accepted"
    machine_caption: str = ""
    reviewed_at: str | None = None  # ISO 8601
    reviews: int = 0
    vqa: tuple[VQARecord, ...] = ()


@dataclass(frozen=True)
class GroupInfo:
    """What the splitter needs to know about one pair: its split unit and stratum."""

    pair_id: int
    figure_id: int
    book_key: str
    modality: str
    # Leak guards (issue 13): the crop's sha256, its near-duplicate cluster ("" when alone)
    # and, for the book rule, the work whose editions share one group ("" when none is set).
    image_sha: str = ""
    cluster: str = ""
    work_key: str = ""


@dataclass(frozen=True)
class ReleaseMeta:
    name: str
    version: str
    created_at: str  # ISO 8601, UTC
    created_by: str
    filter: dict[str, Any]
    split: dict[str, Any]  # {"rule", "seed", "ratios"}
    parent: dict[str, Any] | None = None  # {"name", "version", "manifest_sha256"}
    description: str = ""
