"""Versioned prompt templates, one file per question type under `prompts/`.

A file is `<question_type>.v<N>.txt` (or `<question_type>.vision.v<N>.txt`, the variant sent
with the panel image when vision drafting is on): a small header (question type, version, the
modalities it applies to), then a `--- system` and a `--- user` part. The version string goes
into every draft, so a released file is never edited; a new prompt is a new file with the next
version, and the highest version is the one used. A type with no vision variant (diagnosis,
differential, management: they come from the book, not from looking) is drafted from its text
prompt even when vision is on. `prompts/lock.json` records the sha256 of each released file and
a test fails when a file changes without a new version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from .source import QUESTION_TYPES, DraftSource

FILE_NAME = re.compile(r"^(?P<qt>[a-z_]+)(?:\.(?P<variant>vision))?\.v(?P<n>\d+)\.txt$")
OTHER = "other"
TEXT = "text"
VISION = "vision"


class PromptError(ValueError):
    """A prompt file is malformed; raised at load time, never while drafting."""


@dataclass(frozen=True)
class PromptTemplate:
    question_type: str
    version: str
    modalities: frozenset[str]
    system: str
    user: str
    sha256: str
    variant: str = TEXT

    @property
    def vision(self) -> bool:
        return self.variant == VISION

    def applies_to(self, modality: str) -> bool:
        return (modality or OTHER) in self.modalities

    def messages(self, source: DraftSource, image_uri: str | None = None) -> list[dict[str, Any]]:
        """Chat messages for `source`; missing fields say so rather than leaving a gap.

        A vision variant needs `image_uri` (a `data:` URI) and sends it as an OpenAI
        `image_url` content part, before the text as LLaVA and Qwen were trained.
        """
        text = Template(self.user).substitute(context_fields(source))
        if not self.vision:
            if image_uri is not None:
                raise ValueError(f"{self.version} is a text prompt: it sends no image")
            return [{"role": "system", "content": self.system}, {"role": "user", "content": text}]
        if not image_uri:
            raise ValueError(f"{self.version} is a vision prompt and needs the image")
        parts = [
            {"type": "image_url", "image_url": {"url": image_uri}},
            {"type": "text", "text": text},
        ]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": parts}]


def context_fields(source: DraftSource) -> dict[str, str]:
    book = source.book_title
    if book and source.book_edition:
        book = f"{book} ({source.book_edition})"
    patient = ", ".join(
        p for p in [f"{source.age} years" if source.age is not None else "", source.sex_word] if p
    )
    mentions = "\n".join(f"- {m}" for m in source.mentions)
    return {
        "book": book or "(not given)",
        "section": source.section or "(not given)",
        "modality": source.modality or "(not given)",
        "diagnosis": source.diagnosis or "(not given)",
        "patient": patient or "(not given)",
        "caption": source.caption or "(none)",
        "sub_caption": source.sub_caption or "(none)",
        "mentions": mentions or "(none)",
    }


def parse_prompt(name: str, text: str) -> PromptTemplate:
    m = FILE_NAME.match(name)
    if not m:
        raise PromptError(f"{name}: prompt files are named <question_type>.v<N>.txt")
    head, sep, rest = text.partition("--- system\n")
    system, sep2, user = rest.partition("--- user\n")
    if not sep or not sep2:
        raise PromptError(f"{name}: needs a '--- system' and a '--- user' part, in that order")
    meta: dict[str, str] = {}
    for line in head.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
    variant = m["variant"] or TEXT
    expected = f"{m['qt']}.{VISION}.v{m['n']}" if variant == VISION else f"{m['qt']}.v{m['n']}"
    if meta.get("question_type") != m["qt"] or meta.get("version") != expected:
        raise PromptError(f"{name}: header must say question_type {m['qt']}, version {expected}")
    modalities = frozenset(meta.get("modalities", "").split())
    if not modalities:
        raise PromptError(f"{name}: lists no modalities")
    try:
        Template(user).substitute(context_fields(DraftSource(pair_id=0, caption="")))
    except (KeyError, ValueError) as e:
        raise PromptError(f"{name}: unknown or broken placeholder {e}") from e
    return PromptTemplate(
        question_type=m["qt"],
        version=expected,
        modalities=modalities,
        system=system.strip(),
        user=user.strip() + "\n",
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        variant=variant,
    )


@lru_cache(maxsize=1)
def all_prompts() -> dict[str, PromptTemplate]:
    """Every prompt file, keyed by its file name."""
    folder = resources.files(__package__).joinpath("prompts")
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".txt"):
            found[entry.name] = parse_prompt(entry.name, entry.read_text("utf-8"))
    return found


@lru_cache(maxsize=2)
def current_prompts(variant: str = TEXT) -> dict[str, PromptTemplate]:
    """The highest version per question type of one variant: the prompts drafting uses now."""
    best: dict[str, tuple[int, PromptTemplate]] = {}
    for name, prompt in all_prompts().items():
        if prompt.variant != variant:
            continue
        n = int(FILE_NAME.match(name)["n"])  # type: ignore[index]
        if prompt.question_type not in best or n > best[prompt.question_type][0]:
            best[prompt.question_type] = (n, prompt)
    return {qt: p for qt, (_, p) in best.items()}


def drafting_prompts(vision: bool = False) -> dict[str, PromptTemplate]:
    """Question type -> the prompt a drafter uses: the vision variant where one exists."""
    prompts = dict(current_prompts(TEXT))
    if vision:
        prompts.update(current_prompts(VISION))
    return prompts


def get_prompt(question_type: str, variant: str = TEXT) -> PromptTemplate:
    try:
        return current_prompts(variant)[question_type]
    except KeyError:
        raise PromptError(f"no prompt for question type {question_type!r}") from None


def prompt_versions(vision: bool = False) -> dict[str, str]:
    """Question type -> current prompt version, for the idempotency check on the Django side."""
    return {qt: p.version for qt, p in drafting_prompts(vision).items()}


def applicable_types(modality: str) -> list[str]:
    """The question types worth asking about an image of this modality, in drafting order.

    Histopathological features only make sense for a section, dermoscopic structures only for a
    dermoscopy image, and a body site is not visible in either of those or in an unknown image.
    """
    prompts = current_prompts()
    return [qt for qt in QUESTION_TYPES if qt in prompts and prompts[qt].applies_to(modality)]
