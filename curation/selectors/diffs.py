"""Word-level differences between two values, as plain data a template marks up.

Pure functions, no Django: the conflict pages and the history show an expert what changed
word by word (``<del>`` for the old words, ``<ins>`` for the new) instead of two long
captions side by side. Templates escape the text themselves, so nothing here builds HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher

EQUAL, INSERT, DELETE = "equal", "insert", "delete"
_TOKENS = re.compile(r"\s+|\w+(?:[-'.]\w+)*|[^\w\s]")  # spaces, words, punctuation
EMPTY = "—"


@dataclass(frozen=True)
class Segment:
    """A run of text that both values share (``equal``), only the new one has (``insert``)
    or only the old one had (``delete``)."""

    op: str
    text: str


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str
    segments: tuple[Segment, ...]


def as_text(value) -> str:
    """How a field's value reads in a diff: lists joined, nothing as an em dash."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list | tuple):
        return ", ".join(as_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def _push(out: list[Segment], op: str, text: str) -> None:
    if not text:
        return
    if out and out[-1].op == op:
        out[-1] = Segment(op, out[-1].text + text)
    else:
        out.append(Segment(op, text))


def word_diff(old, new) -> list[Segment]:
    """The segments that turn ``old`` into ``new``, compared word by word.

    Whitespace between two changed words goes with the change, so "red plaque" → "blue
    patch" reads as one deletion and one insertion rather than four fragments.
    """
    a, b = _tokens(as_text(old)), _tokens(as_text(new))
    out: list[Segment] = []
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    opcodes = matcher.get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            shared = a[i1:i2]
            if all(t.isspace() for t in shared) and 0 < n < len(opcodes) - 1:
                # a lone space between two changes: part of both changes
                _push(out, DELETE, "".join(shared))
                _push(out, INSERT, "".join(shared))
            else:
                _push(out, EQUAL, "".join(shared))
            continue
        if tag in ("replace", "delete"):
            _push(out, DELETE, "".join(a[i1:i2]))
        if tag in ("replace", "insert"):
            _push(out, INSERT, "".join(b[j1:j2]))
    return _merge_runs(out)


def _merge_runs(segments: list[Segment]) -> list[Segment]:
    """Gather a run of alternating deletions and insertions into one deletion then one
    insertion (reads as "old phrase" → "new phrase")."""
    merged: list[Segment] = []
    run: dict[str, str] = {DELETE: "", INSERT: ""}

    def flush() -> None:
        for op in (DELETE, INSERT):
            _push(merged, op, run[op])
            run[op] = ""

    for segment in segments:
        if segment.op == EQUAL:
            flush()
            _push(merged, EQUAL, segment.text)
        else:
            run[segment.op] += segment.text
    flush()
    return merged


def changed(old, new) -> bool:
    """Whether two values read differently (``None`` and ``""`` are both nothing)."""
    return as_text(old) != as_text(new)


def field_changes(
    before: Mapping, after: Mapping, fields: Iterable[str] | None = None
) -> list[FieldChange]:
    """The fields whose value differs between ``before`` and ``after``, each with its diff.

    ``fields`` gives the fields and their order; by default the keys of ``before`` (an
    event's ``before`` holds the fields it changed).
    """
    names = list(fields) if fields is not None else list(before)
    out = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if changed(old, new):
            out.append(FieldChange(name, as_text(old), as_text(new), tuple(word_diff(old, new))))
    return out
