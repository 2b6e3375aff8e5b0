"""Reads for works: the suggestion of which work a textbook is an edition of."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import QuerySet

from curation.models import Textbook, Work

_ORDINAL = r"\d+(?:st|nd|rd|th)?|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth"
_EDITION = re.compile(rf"\b(?:{_ORDINAL})\s+(?:edition|ed)\b\.?|\b(?:edition|ed)\.?\s+\d+\b", re.I)
_NON_WORD = re.compile(r"[^\w]+")
_AUTHOR_SPLIT = re.compile(r"\s*(?:;|,|&|\band\b)\s*", re.I)


def normal_title(title: str) -> str:
    """A title without its edition ("2nd edition", "Edition 3"), case and punctuation."""
    return " ".join(_NON_WORD.sub(" ", _EDITION.sub(" ", title or "")).lower().split())


def surnames(authors: str) -> set[str]:
    """The last word of each listed author: "Habif, T.P." and "T. P. Habif" both give habif."""
    out = set()
    for name in _AUTHOR_SPLIT.split(authors or ""):
        words = [w for w in _NON_WORD.split(name.lower()) if len(w) > 2]
        if words:
            out.add(words[-1] if "," not in name else words[0])
    return out


def clean_title(title: str) -> str:
    return " ".join(_EDITION.sub(" ", title or "").split()).strip(" ,;:-")


@dataclass
class Suggestion:
    title: str
    authors: str
    work: Work | None = None  # an existing work to join; None: create one with title/authors
    books: list[Textbook] = field(default_factory=list)  # the other editions that match


def works() -> QuerySet[Work]:
    return Work.objects.all()


def suggest_work(book: Textbook) -> Suggestion | None:
    """Other textbooks whose title (edition words aside) and authors match this one's."""
    key = normal_title(book.title)
    if not key:
        return None
    mine = surnames(book.authors)
    matches = []
    for other in Textbook.objects.exclude(pk=book.pk).select_related("work"):
        if normal_title(other.title) != key:
            continue
        theirs = surnames(other.authors)
        if mine and theirs and not mine & theirs:
            continue
        matches.append(other)
    with_work = [b for b in matches if b.work_id and b.work_id != book.work_id]
    if with_work:
        work = with_work[0].work
        return Suggestion(title=work.title, authors=work.authors, work=work, books=matches)
    if not matches or (book.work_id and all(b.work_id == book.work_id for b in matches)):
        return None
    authors = book.authors or next((b.authors for b in matches if b.authors), "")
    return Suggestion(title=clean_title(book.title), authors=authors, books=matches)
