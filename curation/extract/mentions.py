"""Find body-text citations of figures: "Fig. 3.2", "Figs. 3.2-3.4", "(see Figure 7-26a, b)"."""

from __future__ import annotations

import re

from .annotate import norm_label

REF_WORD = re.compile(r"\b(?:Figs?\.?|Figures?|FIGS?\.?|FIGURES?|Abb\.)(?=\s*\d)", re.I)
LABEL_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)+|\d+[-\u2013]\d+(?![\d.]*\d)|\d+)")
LETTERS = re.compile(r"[a-h](?![a-z])(?:\s*(?:,|and|&|\u2013|-)\s*[a-h](?![\w]))*")
SEPARATOR = re.compile(r"\s*(,|;|and|&|or|to|\u2013|\u2014|-)\s*(?=\d)")
MAX_RANGE = 40


def _expand(a: str, b: str) -> list[str]:
    pa, pb = a.split("."), b.split(".")
    if len(pa) == len(pb) and pa[:-1] == pb[:-1] and pa[-1].isdigit() and pb[-1].isdigit():
        lo, hi = int(pa[-1]), int(pb[-1])
        if lo < hi <= lo + MAX_RANGE:
            return [".".join([*pa[:-1], str(n)]) for n in range(lo, hi + 1)]
    return [a, b]


def find_refs(text: str) -> list[str]:
    """Normalised labels cited in `text`, in order of first citation, ranges expanded."""
    found: list[str] = []
    for m in REF_WORD.finditer(text):
        pos = m.end()
        prev: str | None = None
        pending_range = False
        while True:
            lm = LABEL_TOKEN.match(text, pos)
            if not lm:
                break
            label = norm_label(lm.group(1))
            if prev is not None and prev.count(".") != label.count("."):
                break  # "Fig. 3.2, 45 patients": the number is not another figure
            pos = lm.end()
            lt = LETTERS.match(text, pos)
            if lt:
                pos = lt.end()
            labels = _expand(prev, label)[1:] if pending_range and prev else [label]
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
