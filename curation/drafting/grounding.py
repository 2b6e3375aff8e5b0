"""Is a drafted answer supported by the textbook, and is a question a repeat?

MM-Skin's generated answers sometimes invent details ("located on the thumb of the
dermatologist"). The check here is lexical and deliberately strict: every key term of the answer
(a diagnosis from the vocabulary, or any other content word that is not generic VQA phrasing)
must appear in the source text, allowing for inflection ("scaly" ~ "scale", "papular" ~
"papule") and diagnosis synonyms. Unsupported terms are listed for the expert, not silently
fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from .source import DraftSource

# Read as a file rather than through `curation.extract`, whose import pulls in PyMuPDF.
VOCABULARY = Path(__file__).resolve().parent.parent / "extract" / "data" / "diagnoses.txt"

WORD = re.compile(r"[a-z0-9]+")
DATA = Path(__file__).resolve().parent / "data"


def _word_list(name: str) -> frozenset[str]:
    lines = (DATA / name).read_text("utf-8").splitlines()
    return frozenset(w for line in lines if not line.startswith("#") for w in line.split())


STOPWORDS = _word_list("stopwords.txt")

GENERIC = _word_list("generic_terms.txt")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


SUFFIXES = ("ations", "ation", "ously", "ous", "ing", "ed", "es", "s", "al", "ic", "y", "e")


def stem(word: str) -> str:
    """A light suffix strip, only so that inflections of one word compare equal."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _related(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.isdigit() or b.isdigit():
        return False
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= 5 and n >= 0.75 * min(len(a), len(b))


@lru_cache(maxsize=1)
def vocabulary() -> tuple[re.Pattern[str], dict[str, str]]:
    """Diagnosis names (lower case) -> canonical name, and a pattern finding them, longest first."""
    canon: dict[str, str] = {}
    for line in VOCABULARY.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        names = [" ".join(words(n)) for n in line.split("|")]
        names = [n for n in names if n]
        for n in names:
            canon.setdefault(n, names[0])
    terms = sorted(canon, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b"), canon


@dataclass(frozen=True)
class Grounding:
    grounded: bool
    unsupported_terms: list[str] = field(default_factory=list)
    key_terms: list[str] = field(default_factory=list)
    # The unsupported terms that are diagnosis names: only the text can ground those.
    unsupported_diagnoses: list[str] = field(default_factory=list)


def check_grounding(
    answer: str, source: DraftSource | Sequence[str], *, max_unsupported: int = 0
) -> Grounding:
    """Key terms of `answer` with no support in the source text; grounded if few enough.

    `source` is a `DraftSource` (caption, sub-caption, section, mentions and the reviewed
    fields) or plain texts.
    """
    texts = source.source_texts() if isinstance(source, DraftSource) else list(source)
    source_norm = " ".join(" ".join(words(t)) for t in texts)
    source_stems = {stem(w) for w in source_norm.split()}
    pattern, canon = vocabulary()
    source_diagnoses = {canon[m.group(1)] for m in pattern.finditer(source_norm)}

    answer_norm = " ".join(words(answer))
    key_terms: list[str] = []
    unsupported: list[str] = []
    diagnoses: list[str] = []

    def note(term: str, ok: bool, diagnosis: bool = False) -> None:
        if term not in key_terms:
            key_terms.append(term)
            if not ok:
                unsupported.append(term)
                if diagnosis:
                    diagnoses.append(term)

    rest = answer_norm
    for m in pattern.finditer(answer_norm):
        name = m.group(1)
        supported = re.search(rf"\b{re.escape(name)}\b", source_norm) is not None
        note(name, supported or canon[name] in source_diagnoses, diagnosis=True)
        rest = rest.replace(name, " ", 1)
    for w in rest.split():
        if w in STOPWORDS or w in GENERIC or (len(w) < 3 and not w.isdigit()):
            continue
        s = stem(w)
        note(w, s in source_stems or any(_related(s, t) for t in source_stems))
    return Grounding(len(unsupported) <= max_unsupported, unsupported, key_terms, diagnoses)


def question_tokens(question: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(question) if w not in STOPWORDS)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the content-word stems of two questions."""
    ta, tb = question_tokens(a), question_tokens(b)
    if not ta and not tb:
        return 1.0 if " ".join(words(a)) == " ".join(words(b)) else 0.0
    return len(ta & tb) / len(ta | tb)


T = TypeVar("T")


def drop_near_duplicates(
    items: Iterable[T],
    question: Callable[[T], str],
    *,
    existing: Iterable[str] = (),
    threshold: float = 0.75,
) -> tuple[list[T], list[T]]:
    """Keep the first of each group of near-identical questions; return (kept, dropped).

    `existing` holds questions the pair already has (an earlier prompt version, a hand-written
    item), so a re-draft does not repeat them either.
    """
    seen = list(existing)
    kept: list[T] = []
    dropped: list[T] = []
    for item in items:
        q = question(item)
        if any(similarity(q, s) >= threshold for s in seen):
            dropped.append(item)
        else:
            kept.append(item)
            seen.append(q)
    return kept, dropped
