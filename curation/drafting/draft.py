"""`draft_items`: the one call the Celery task makes per pair.

It returns one `Draft` per question type it tried, usable or not, so the caller can store every
outcome (a failed draft keeps its reason and its cost) and never lose or double-draft a pair.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from .errors import BudgetExhausted, DraftingError, TransportFailure, Usage
from .grounding import check_grounding, drop_near_duplicates
from .prompting import PromptTemplate, applicable_types, drafting_prompts
from .source import QUESTION_TYPES, DraftSource
from .template import TEMPLATE_TYPES, TEMPLATE_VERSION, template_items

log = logging.getLogger(__name__)


@dataclass
class Generator:
    """Who wrote a draft; stored with the item and shipped in the release's provenance."""

    kind: str  # "llm" or "template"
    model: str
    prompt_version: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    attempts: int = 0
    # Vision drafting: "sent" (the model saw the panel), "fallback" (a vision prompt went
    # text-only, `image_note` says why) or "" (a text prompt); bytes of the image sent.
    image: str = ""
    image_note: str = ""
    image_bytes: int = 0


@dataclass
class Draft:
    """One drafted item, or one failed attempt at it when `error_kind` is set.

    `error_kind` is "" for a usable draft, else "junk" (unusable reply), "transport" (no reply),
    "budget" (not attempted), "duplicate" or "ungrounded" (dropped here).
    """

    question_type: str
    question: str
    answer: str
    evidence: str
    generator: Generator
    grounded: bool = True
    unsupported_terms: list[str] = field(default_factory=list)
    error_kind: str = ""
    error: str = ""
    # The answer describes what is visible (the model saw the image and said so, or used
    # words the text does not have); such an item always waits for an expert.
    visual: bool = False
    visual_terms: list[str] = field(default_factory=list)
    basis: str = "text"

    @property
    def ok(self) -> bool:
        return not self.error_kind

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Budget:
    """Tokens and/or money this call may spend; shareable across calls and threads.

    Checked before each request and charged after it (failed attempts included), so it can be
    overshot by at most the requests already in flight.
    """

    def __init__(self, max_tokens: int | None = None, max_cost: float | None = None) -> None:
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.spent = Usage()
        self._lock = threading.Lock()

    def exhausted(self) -> bool:
        with self._lock:
            return (self.max_tokens is not None and self.spent.total_tokens >= self.max_tokens) or (
                self.max_cost is not None and self.spent.cost >= self.max_cost
            )

    def charge(self, usage: Usage) -> None:
        with self._lock:
            self.spent.add(usage)


class DraftClient(Protocol):
    """What `draft_items` needs from a client; `LLMClient` is the real one."""

    model: str
    kind: str

    def complete(self, prompt: PromptTemplate, source: DraftSource) -> Any: ...


def draft_items(
    source: DraftSource,
    client: DraftClient | None,
    *,
    question_types: Iterable[str] | None = None,
    budget: Budget | None = None,
    existing_questions: Sequence[str] = (),
    drop_ungrounded: bool = False,
    max_unsupported: int = 0,
    max_parallel: int = 1,
) -> list[Draft]:
    """Draft the VQA items for one pair: by the LLM `client`, or by templates when it is None.

    `question_types` narrows the types (default: all that suit the modality; a type that does
    not suit it is skipped). `existing_questions` are the pair's stored questions, so repeats
    of them are dropped too. Ungrounded drafts are kept and flagged unless `drop_ungrounded`.

    A draft whose model saw the image is checked against the text too, but its words the text
    lacks are taken as what it saw (`visual_terms`), not as inventions: it is marked `visual`,
    kept, and left for an expert. A diagnosis name the text lacks stays unsupported even then:
    the book, not the picture, says what the diagnosis is.
    """
    wanted = _check_types(question_types)
    if client is None:
        drafts = _template_drafts(source, wanted)
    else:
        types = [t for t in applicable_types(source.modality) if wanted is None or t in wanted]
        drafts = _llm_drafts(source, client, types, budget, max_parallel)

    for i, d in enumerate(drafts):
        if d.ok:
            drafts[i] = _grounded(d, source, max_unsupported)
    usable = [d for d in drafts if d.ok]
    _, repeats = drop_near_duplicates(usable, lambda d: d.question, existing=existing_questions)
    out = []
    for d in drafts:
        if any(d is r for r in repeats):
            d = replace(d, error_kind="duplicate", error="near-duplicate of another question")
        elif d.ok and drop_ungrounded and not d.grounded:
            d = replace(d, error_kind="ungrounded", error=", ".join(d.unsupported_terms))
        out.append(d)
    return out


def _grounded(d: Draft, source: DraftSource, max_unsupported: int) -> Draft:
    g = check_grounding(d.answer, source, max_unsupported=max_unsupported)
    saw_image = d.generator.image == "sent"
    if not saw_image:
        return replace(d, grounded=g.grounded, unsupported_terms=g.unsupported_terms)
    seen = [t for t in g.unsupported_terms if t not in g.unsupported_diagnoses]
    visual = d.basis != "text" or bool(seen)
    if not visual:
        return replace(d, grounded=g.grounded, unsupported_terms=g.unsupported_terms)
    unsupported = list(g.unsupported_diagnoses)
    return replace(
        d,
        grounded=len(unsupported) <= max_unsupported,
        unsupported_terms=unsupported,
        visual=True,
        visual_terms=seen,
    )


def _check_types(question_types: Iterable[str] | None) -> set[str] | None:
    if question_types is None:
        return None
    wanted = set(question_types)
    unknown = wanted - set(QUESTION_TYPES) - set(TEMPLATE_TYPES)
    if unknown:
        raise ValueError(f"unknown question types: {sorted(unknown)}")
    return wanted


def _template_drafts(source: DraftSource, wanted: set[str] | None) -> list[Draft]:
    return [
        Draft(
            question_type=item.question_type,
            question=item.question,
            answer=item.answer,
            evidence=item.evidence,
            generator=Generator(kind="template", model="template", prompt_version=TEMPLATE_VERSION),
        )
        for item in template_items(source)
        if wanted is None or item.question_type in wanted
    ]


def _llm_drafts(
    source: DraftSource,
    client: DraftClient,
    types: list[str],
    budget: Budget | None,
    max_parallel: int,
) -> list[Draft]:
    prompts = drafting_prompts(vision=bool(getattr(client, "vision", False)))
    down: list[TransportFailure] = []  # once the server is unreachable, stop asking it

    def one(question_type: str) -> Draft:
        prompt = prompts[question_type]
        generator = Generator(kind=client.kind, model=client.model, prompt_version=prompt.version)
        try:
            if down:
                raise TransportFailure("skipped", f"server failed earlier: {down[0]}")
            if budget is not None and budget.exhausted():
                raise BudgetExhausted("budget", "the drafting budget is spent")
            result = client.complete(prompt, source)
        except DraftingError as e:
            if isinstance(e, TransportFailure) and e.reason != "skipped":
                down.append(e)
            if budget is not None:
                budget.charge(e.usage)
            _fill(generator, e.usage, e.attempts)
            log.warning("draft %s/%s failed: %s", source.pair_id, question_type, e)
            return Draft(question_type, "", "", "", generator, error_kind=e.kind, error=str(e))
        if budget is not None:
            budget.charge(result.usage)
        _fill(generator, result.usage, result.attempts)
        generator.prompt_version = getattr(result, "prompt_version", "") or prompt.version
        generator.image = getattr(result, "image", "")
        generator.image_note = getattr(result, "image_note", "")
        generator.image_bytes = getattr(result, "image_bytes", 0)
        out = result.output
        return Draft(
            question_type,
            out.question,
            out.answer,
            out.evidence,
            generator,
            basis=getattr(out, "basis", "text"),
        )

    if max_parallel <= 1 or len(types) <= 1:
        return [one(t) for t in types]
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(types))) as pool:
        return list(pool.map(one, types))


def _fill(generator: Generator, usage: Usage, attempts: int) -> None:
    generator.prompt_tokens = usage.prompt_tokens
    generator.completion_tokens = usage.completion_tokens
    generator.cost = usage.cost
    generator.attempts = attempts
