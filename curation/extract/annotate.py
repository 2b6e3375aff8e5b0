"""Read what a caption says: label, sub-captions per panel letter, modality, age, sex, diagnosis.

All rules are plain regular expressions over caption text, so each can be tested in isolation and
its mistakes read off the benchmark output.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from .model import FEMALE, MALE

LABEL = r"(?:[A-Z]?\d+(?:[.\-\u2013]\d+)*)"
CAPTION_START = re.compile(
    # An ornament may precede the label ("\u25a0 Fig. 3.2", "\u25ba Figure 3-2").
    r"^\s*[^\w\s(]{0,2}\s*(?:Fig(?:ure)?\.?|FIG(?:URE)?\.?|Abb\.)\s*("
    + LABEL
    + r")(?![\d])[.:|]?\s*",
    re.UNICODE,
)
LETTER_MARK = re.compile(
    r"\(([a-hA-H])((?:\s*(?:,|and|&|\u2013|-|to)\s*[a-hA-H])*)\)"
    r"|(?:(?<=[\s.;])|^)([a-h])(?=[):]\s)"  # "a) text" or "a: text"
)

# "A Plaques", "A, Plaques", "A: plaques; B: nail pitting": a bare capital after a sentence end.
# Without punctuation the text must start in upper case, so an article ("A 45-year-old") is not
# read as a marker.
BARE_MARK = re.compile(r"(?:(?<=[.;]\s)|(?<=^))([A-H])(?:[.,:]\s+(?=[A-Za-z(])|\s+(?=[A-Z(]))")
# A letter the text refers to rather than introduces: "shown in (a)", "table (a) in Figure 1".
REFERENCE_BEFORE = re.compile(r"\b(?:in|see|of|from|cf\.?|as|than|like|panels?|table)\s*$", re.I)
REFERENCE_AFTER = re.compile(r"\s*(?:in|of)\s+(?:Fig|Figure|panel|table)", re.I)
TRAILING_JOIN = re.compile(r"(?:[\s,;]+|\s+and)+$")
LETTER_NAME = re.compile(r"(?<![A-Za-z])[a-hA-H](?![A-Za-z])")

MODALITY_PATTERNS = {
    "pathological": re.compile(
        r"histopath|histolog|\bH\s*&\s*E\b|ha?ematoxylin|\bbiops|photomicrograph|"
        r"micrograph|immunohisto|\bstain(?:ed|ing)?\b|magnification|[x\u00d7]\s?\d{2,3}\b|"
        r"\bPAS\b|dermis shows|epidermis shows|infiltrate",
        re.I,
    ),
    "dermoscopic": re.compile(
        r"dermoscop|dermatoscop|epiluminescence|trichoscop|polari[sz]ed light|videodermoscop",
        re.I,
    ),
    "clinical": re.compile(r"clinical(?:ly)?\b|photograph|lesions? on the|\bon the\b", re.I),
}
# Words that name a chart, diagram or drawing: the picture is none of the three modalities.
OTHER_PATTERN = re.compile(
    r"\b(?:plots?|graphs?|charts?|diagrams?|schematics?|schema|flow\s?chart|histograms?|"
    r"heat\s?map|curves?|spectr(?:um|a|ums)|scatter|architecture|pipeline|algorithm|"
    r"screenshot|illustration of the model|structure of compound|crystal structure|"
    r"overview of|isotherm|model of)\b",
    re.I,
)
# A micrograph of material, not tissue (scanning electron micrographs of steel, crystals).
MATERIAL = re.compile(
    r"\b(?:steel|alloy|metal|corrosion|coating|polymer|nanoparticles?|crystals?|electrodes?|"
    r"catalyst|cement|concrete|soil|mineral|powder|membrane filter)\b",
    re.I,
)
TISSUE = re.compile(r"skin|tissue|biops|epiderm|derm|\bH\s*&\s*E\b|stain|lesion|patient", re.I)

AGE_SEX_PATTERNS = [
    (re.compile(r"\b(\d{1,3})[- ]year[- ]old\s+(\w+)", re.I), "age_noun"),
    (re.compile(r"\b(\d{1,2})[- ]month[- ]old\s+(\w+)", re.I), "months_noun"),
    (re.compile(r"\(\s*([MF])\s*[,/]\s*(\d{1,3})\s*(?:y|yrs?|years?)?\s*\)"), "sex_age"),
    (re.compile(r"\(\s*(\d{1,3})\s*(?:y|yrs?|years?)?\s*[,/]\s*([MF])\s*\)"), "age_sex"),
    (re.compile(r"\baged\s+(\d{1,3})\b", re.I), "aged"),
]
FEMALE_WORDS = {"woman", "women", "female", "girl", "lady", "mother", "daughter", "she", "her"}
MALE_WORDS = {"man", "men", "male", "boy", "gentleman", "father", "son", "he", "his"}
SEX_LETTER = {"F": FEMALE, "M": MALE}  # "(F, 62)"
SEX_WORD = re.compile(r"\b(woman|female|girl|lady|man|male|boy|gentleman)\b", re.I)


def parse_label(text: str) -> tuple[str, int] | None:
    """Return (label, end offset) when `text` starts like a figure caption."""
    m = CAPTION_START.match(text)
    if not m:
        return None
    return m.group(1).replace("\u2013", "-"), m.end()


# "Figure 2 (...continued) However, ...", "Fig. 3 (Continued)", "Figure 4 cont'd": the rest of a
# caption set on the next page (or column) under its figure's label again.
CONTINUED = re.compile(
    r"\s*[(\[]?\s*(?:\.{2,}|\u2026)?\s*(?:continued|cont(?:'d|\u2019d|\.))"
    r"\s*(?:\.{2,}|\u2026)?\s*[)\]]?[.:]?\s*",
    re.I,
)
# "(continued on next page...)", "(Continued overleaf)": the announcement at the first part's end.
CONTINUES = re.compile(
    r"\s*[(\[]\s*continued\s+(?:on\b|overleaf)[^)\]]*[)\]]\s*$|\s*continued\s+overleaf\.?\s*$",
    re.I,
)


def continuation(text: str) -> str | None:
    """The text of a caption's continuation block ("Figure 2 (...continued) However ..."),
    without its label and marker; None for any other block."""
    parsed = parse_label(text)
    if not parsed:
        return None
    m = CONTINUED.match(text, parsed[1])
    return text[m.end() :].strip() if m else None


def join_continuation(first: str, rest: str) -> str:
    """A caption with its continued part appended, the "(continued on next page)" note gone."""
    return f"{CONTINUES.sub('', first).rstrip()} {rest}".strip()


def norm_label(label: str) -> str:
    """Compare labels across styles: "7-26", "7.26" and the en-dash form are one figure."""
    return re.sub(r"[\-\u2013]", ".", label.strip().rstrip(".")).lower()


def split_subcaptions(caption: str) -> tuple[str, dict[str, str]]:
    """Split a caption into its shared lead and the text after each "(a)" marker.

    A marker like "(a, b)" or "(a-c)" gives the same text to every letter it names. Books that
    set bare capitals ("Psoriasis. A Plaques on the knee. B Nail pitting.") are read too, when
    at least A and B are present in order.
    """
    marks = _paren_marks(caption)
    kept = _progressive(marks)
    if not kept:
        kept = _progressive(
            [(m.start(), m.end(), [m.group(1).lower()]) for m in BARE_MARK.finditer(caption)]
        )
    if len({n for _, _, names in kept for n in names}) < 2:
        kept = []  # one letter describes no panels: "(a)" alone is a reference or a stray
    if not kept:
        return caption.strip(), {}
    lead = caption[: kept[0][0]].strip()
    subs: dict[str, str] = {}
    for i, (_, end, names) in enumerate(kept):
        stop = kept[i + 1][0] if i + 1 < len(kept) else len(caption)
        # "(a) CTL and (b) hybrid", "A: knee; B: nail": the joining word belongs to neither.
        text = TRAILING_JOIN.sub("", caption[end:stop].strip())
        for n in names:
            subs.setdefault(n, text)
    return lead, subs


def _progressive(marks: list[tuple[int, int, list[str]]]) -> list[tuple[int, int, list[str]]]:
    """Markers that start at the first letter not yet named, each naming only new letters, so
    that a repeated "(a)" or a stain such as "(H&E)" is not read as a panel marker."""
    kept = []
    seen: set[str] = set()
    for start, end, names in marks:
        expect = next(c for c in "abcdefghi" if c not in seen)
        # "(A and C) ... (B)": a marker may skip letters that a later one names.
        if names[0] != expect or names != sorted(set(names)) or seen & set(names):
            continue
        kept.append((start, end, names))
        seen.update(names)
    return kept


def _paren_marks(caption: str) -> list[tuple[int, int, list[str]]]:
    marks = []
    for m in LETTER_MARK.finditer(caption):
        if REFERENCE_BEFORE.search(caption[: m.start()]) or REFERENCE_AFTER.match(caption, m.end()):
            continue
        if m.group(1):
            first = m.group(1).lower()
            rest = (m.group(2) or "").lower()
            # The letters of the joining words ("a" and "d" of "and") are not panel names.
            names = [first, *(c.lower() for c in LETTER_NAME.findall(rest))]
            if re.search(r"\u2013|-|\bto\b", rest) and len(names) == 2:
                names = [chr(c) for c in range(ord(names[0]), ord(names[1]) + 1)]
        else:
            names = [m.group(3)]
        marks.append((m.start(), m.end(), names))
    return marks


def modality_from_text(text: str) -> tuple[str | None, float]:
    """Modality named by caption text, with a confidence; None when the text is silent.

    "other" is answered for charts, diagrams and drawings, and for micrographs of material
    rather than tissue: not every figure of a book is one of the three modalities.
    """
    hits = {m: len(p.findall(text)) for m, p in MODALITY_PATTERNS.items()}
    if hits["dermoscopic"] and hits["dermoscopic"] >= hits["pathological"]:
        return "dermoscopic", 0.9
    if OTHER_PATTERN.search(text):
        return "other", 0.8  # "bar chart of biopsy results" is a chart
    if hits["pathological"] and MATERIAL.search(text) and not TISSUE.search(text):
        return "other", 0.75
    if hits["pathological"]:
        return "pathological", 0.9 if hits["pathological"] > 1 else 0.8
    if hits["clinical"]:
        # "on the shin" is weak evidence ("the bars on the top ..." says it too).
        strong = re.search(r"clinical|photograph", text, re.I)
        return "clinical", 0.75 if strong else 0.55
    return None, 0.0


def age_sex(text: str) -> tuple[int | None, str | None]:
    """Age in years and sex (``FEMALE``/``MALE``, the platform's values) from phrases like
    "45-year-old man" or "(M, 62)"."""
    age: int | None = None
    sex: str | None = None
    for pat, kind in AGE_SEX_PATTERNS:
        m = pat.search(text)
        if not m:
            continue
        if kind in ("age_noun", "months_noun"):
            age = int(m.group(1)) if kind == "age_noun" else 0
            sex = _sex_of(m.group(2))
        elif kind == "sex_age":
            sex, age = SEX_LETTER[m.group(1)], int(m.group(2))
        elif kind == "age_sex":
            age, sex = int(m.group(1)), SEX_LETTER[m.group(2)]
        else:
            age = int(m.group(1))
        break
    if sex is None:
        m = SEX_WORD.search(text)
        if m:
            sex = _sex_of(m.group(1))
    if age is not None and not 0 <= age <= 120:
        age = None
    return age, sex


def _sex_of(noun: str) -> str | None:
    noun = noun.lower()
    return FEMALE if noun in FEMALE_WORDS else MALE if noun in MALE_WORDS else None


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[re.Pattern[str], dict[str, str]]:
    text = resources.files(__package__).joinpath("data/diagnoses.txt").read_text("utf-8")
    canon: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        names = [n.strip() for n in line.split("|") if n.strip()]
        for n in names:
            canon.setdefault(n.lower(), names[0])
    terms = sorted(canon, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b", re.I)
    return pattern, canon


def diagnosis(caption: str, section: list[str] | None = None) -> str:
    """First vocabulary diagnosis in the caption, else in the section path (deepest first).

    Captions name the condition before describing findings ("Blue nevus ... with surface
    telangiectasia"), so the earliest match wins; at one position the longest name does.
    """
    pattern, canon = _vocabulary()
    for text in [caption, *reversed(section or [])]:
        m = pattern.search(text)
        if m:
            return canon[m.group(1).lower()]
    return ""
