"""Find body-text citations of figures: "Fig. 3.2", "Figs. 3.2-3.4", "(see Figure 7-26a, b)"."""

from __future__ import annotations

import re

from .annotate import norm_label, parse_label

# "Supplementary Fig. 3" and "Extended Data Fig. 3" cite figures that are not in the document.
REF_WORD = re.compile(
    r"(?<!Supplementary )(?<!Supplemental )(?<!Suppl\. )(?<!Extended Data )"
    r"\b(?:Figs?\.?|Figures?|FIGS?\.?|FIGURES?|Abb\.)(?=\s*\d)",
    re.I,
)
PLURAL = re.compile(r"(?:Figs|Figures)\.?$", re.I)
LABEL_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)+|\d+[-\u2013]\d+(?![\d.]*\d)|\d+)")
DASHED = re.compile(r"^(\d+)[-\u2013](\d+)$")
LETTERS = re.compile(r"[a-h](?![a-z])(?:\s*(?:,|and|&|\u2013|-)\s*[a-h](?![\w]))*")
SEPARATOR = re.compile(r"\s*(,|;|and|&|or|to|\u2013|\u2014|-)\s*(?=\d)")
MAX_RANGE = 40
# After a caption's own label: prose ("Figure 3 shows ...") starts in lower case.
PROSE_AFTER_LABEL = re.compile(r"[a-h]?\s*(?:,\s*[a-h]\s*)*[a-z]")


def _expand(a: str, b: str) -> list[str]:
    pa, pb = a.split("."), b.split(".")
    if len(pa) == len(pb) and pa[:-1] == pb[:-1] and pa[-1].isdigit() and pb[-1].isdigit():
        lo, hi = int(pa[-1]), int(pb[-1])
        if lo < hi <= lo + MAX_RANGE:
            return [".".join([*pa[:-1], str(n)]) for n in range(lo, hi + 1)]
    return [a, b]


def _dashed_range(
    token: str, plural: bool, text: str, pos: int, prev: str | None
) -> list[str] | None:
    """Numbers of "Figs 1-10": a dash between two plain numbers after a plural is a range, not
    a chapter-figure label ("Fig. 7-26"), unless another dashed number follows in the list
    ("Figs. 7-26 and 7-27", "Figs. 5-1 to 5-3"), which is that label style."""
    m = DASHED.match(token)
    if not m or not plural or (prev is not None and "." in prev):
        return None
    lo, hi = int(m.group(1)), int(m.group(2))
    if not lo < hi <= lo + MAX_RANGE:
        return None
    sm = SEPARATOR.match(text, pos)
    if sm:
        nxt = LABEL_TOKEN.match(text, sm.end())
        if nxt and DASHED.match(nxt.group(1)):
            return None
    return [str(n) for n in range(lo, hi + 1)]


def caption_label_end(text: str) -> int:
    """Where the label of a caption block ends ("Figure 3. A plaque"), 0 for other text: a
    caption's own label is not a citation of its figure."""
    parsed = parse_label(text)
    if not parsed or PROSE_AFTER_LABEL.match(text[parsed[1] :]):
        return 0
    return parsed[1]


def find_refs(text: str, *, skip_own_label: bool = False) -> list[str]:
    """Normalised labels cited in `text`, in order of first citation, ranges expanded.

    With `skip_own_label`, a block that starts like a caption does not cite its own label.
    """
    found: list[str] = []
    start = caption_label_end(text) if skip_own_label else 0
    for m in REF_WORD.finditer(text, start):
        pos = m.end()
        plural = bool(PLURAL.match(m.group(0)))
        prev: str | None = None
        pending_range = False
        while True:
            lm = LABEL_TOKEN.match(text, pos)
            if not lm:
                break
            pos = lm.end()
            lt = LETTERS.match(text, pos)
            if lt:
                pos = lt.end()
            expanded = _dashed_range(lm.group(1), plural, text, pos, prev)
            label = expanded[-1] if expanded else norm_label(lm.group(1))
            first = expanded[0] if expanded else label
            if prev is not None and prev.count(".") != first.count("."):
                break  # "Fig. 3.2, 45 patients": the number is not another figure
            if expanded:
                labels = expanded
            elif pending_range and prev:
                labels = _expand(prev, label)[1:]
            else:
                labels = [label]
            for lab in labels:
                if lab not in found:
                    found.append(lab)
            prev = label
            sm = SEPARATOR.match(text, pos)
            if not sm:
                break
            pending_range = sm.group(1) in ("to", "\u2013", "\u2014", "-")
            pos = sm.end()
    return found
