"""External benchmarks in MM-Skin's CSV formats, and suites of them.

MM-Skin (ZwQ803/MM-Skin, `Dataframe/test/`) ships two kinds of CSV:

- classification: `image,atributes,categories` (the original spelling; Patch16's files say
  `attributes` and add a `set` column), with `categories` a Python list literal such as
  `['Nevus']` and `atributes` usually `[]`;
- VQA: `image,question,answer`.

`image` is a path relative to an image folder given separately (`--images`). Both are read
with the standard `csv` module (a GPU machine installs `ml` without pandas); list literals are
parsed with `ast.literal_eval`, never `eval` as MM-Skin's scripts do. A row MM-Skin would crash
on (no category, a category that is not a string, a missing image) is refused up front with
its row number, before any model is loaded.

A row with several categories is one item whose gold label is any of them: MM-Skin picks one
at random per run (`random.choice`), which makes its scores vary between runs; here an answer
matching any listed category is right, and the first category is the gold label otherwise.
"""

from __future__ import annotations

import ast
import csv
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CLASSIFICATION, VQA = "classification", "vqa"
ATTRIBUTE_COLUMNS = ("attributes", "atributes")

# Prompt presets for zero-shot classification. `{labels}` is the candidate list joined with
# ", ". `mmskin` is the question of MM-Skin's ZS_classification.py, word for word, so scores
# stay comparable with the paper's; `open` names no candidates (the model must know them).
PROMPT_PRESETS = {
    "mmskin": (
        "This is a skin lesion image. From the following categories: {labels}, "
        "which one is the diagnosis?"
    ),
    "choices": "Which one of these is the diagnosis: {labels}? Answer with the category only.",
    "open": "What is the most likely diagnosis?",
}
DEFAULT_PROMPT_STYLE = "mmskin"


class BenchmarkError(ValueError):
    """A benchmark CSV or suite file that cannot be evaluated as it is."""


@dataclass
class BenchmarkItem:
    """One row: an image and either its categories or a question with its answer."""

    row: int  # 1-based data row number in the CSV (the header is row 0)
    image: str  # as written in the CSV, relative to the image folder
    categories: list[str] = field(default_factory=list)
    question: str | None = None
    answer: str | None = None


@dataclass
class Benchmark:
    """A CSV plus what is needed to evaluate it."""

    name: str
    csv: Path
    images: Path
    kind: str
    items: list[BenchmarkItem]
    labels: list[str] = field(default_factory=list)  # classification: the fixed candidate set
    prompt: str = ""  # classification: the question asked of every image
    prompt_style: str = DEFAULT_PROMPT_STYLE
    modalities: dict[str, str] = field(default_factory=dict)  # image -> modality (VQA)

    def image_path(self, item: BenchmarkItem) -> Path:
        return self.images / item.image

    def describe(self) -> dict[str, Any]:
        """What the scores depend on, written beside them."""
        return {
            "name": self.name,
            "kind": self.kind,
            "csv": str(self.csv),
            "images": str(self.images),
            "items": len(self.items),
            **(
                {"labels": self.labels, "prompt": self.prompt, "prompt_style": self.prompt_style}
                if self.kind == CLASSIFICATION
                else {}
            ),
        }


# -- reading ----------------------------------------------------------------------------------
def _literal_list(raw: str, row: int, column: str) -> list[str]:
    text = (raw or "").strip()
    if not text:
        return []
    if not text.startswith("["):  # a bare label, as some hand-made CSVs have
        return [text]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise BenchmarkError(f"row {row}: {column} {raw!r} is not a list literal") from exc
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BenchmarkError(f"row {row}: {column} {raw!r} must be a list of strings")
    return [v for v in value if v.strip()]


def read_csv(path: str | Path) -> tuple[str, list[BenchmarkItem]]:
    """The kind of an MM-Skin CSV (classification or VQA) and its rows."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: no such benchmark CSV")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        if "image" not in columns:
            raise BenchmarkError(f"{path}: no `image` column (columns: {columns})")
        if "categories" in columns:
            kind = CLASSIFICATION
        elif {"question", "answer"} <= set(columns):
            kind = VQA
        else:
            raise BenchmarkError(
                f"{path}: neither a classification CSV (image,atributes,categories) nor a VQA "
                f"CSV (image,question,answer); columns: {columns}"
            )
        attr = next((c for c in ATTRIBUTE_COLUMNS if c in columns), None)
        items = []
        for n, rec in enumerate(reader, start=1):
            image = (rec.get("image") or "").strip()
            if not image:
                raise BenchmarkError(f"{path}: row {n}: empty image")
            if kind == CLASSIFICATION:
                cats = _literal_list(rec.get("categories") or "", n, "categories")
                if not cats:
                    raise BenchmarkError(f"{path}: row {n}: no category for {image}")
                if attr:
                    _literal_list(rec.get(attr) or "", n, attr)  # checked, not used
                items.append(BenchmarkItem(row=n, image=image, categories=cats))
            else:
                question = (rec.get("question") or "").strip()
                answer = (rec.get("answer") or "").strip()
                if not question or not answer:
                    raise BenchmarkError(f"{path}: row {n}: empty question or answer")
                items.append(BenchmarkItem(row=n, image=image, question=question, answer=answer))
    if not items:
        raise BenchmarkError(f"{path}: no rows")
    return kind, items


def read_captions(path: str | Path) -> dict[str, str]:
    """image -> modality, from a release's `caption.csv` (MM-Skin's VQA_test.py splits by it)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"image", "modality"} <= set(reader.fieldnames or []):
            raise BenchmarkError(f"{path}: a captions file needs image and modality columns")
        return {r["image"]: r["modality"] for r in reader if r.get("image")}


def parse_labels(spec: str | Sequence[str] | None) -> list[str]:
    """`--labels`: comma-separated, or `@FILE` with one label a line, or a YAML list."""
    if spec is None:
        return []
    if isinstance(spec, str):
        if spec.startswith("@"):
            lines = Path(spec[1:]).read_text("utf-8").splitlines()
            labels = [line.strip() for line in lines]
        else:
            labels = [s.strip() for s in spec.split(",")]
    else:
        labels = [str(s).strip() for s in spec]
    labels = [s for s in labels if s]
    seen: set[str] = set()
    for label in labels:
        key = normalise(label)
        if key in seen:
            raise BenchmarkError(f"label {label!r} is given twice (after normalising)")
        seen.add(key)
    return labels


def build_prompt(style: str, labels: Sequence[str]) -> str:
    """A preset by name, or a template of one's own with `{labels}` in it."""
    template = PROMPT_PRESETS.get(style, style)
    if template is style and "{labels}" not in style and " " not in style:
        known = ", ".join(sorted(PROMPT_PRESETS))
        raise BenchmarkError(f"prompt style {style!r} is no preset ({known}) nor a template")
    try:
        return template.format(labels=", ".join(labels))
    except (KeyError, IndexError) as exc:
        raise BenchmarkError(f"prompt template {style!r}: only {{labels}} is filled in") from exc


def load_benchmark(
    csv_path: str | Path,
    images: str | Path,
    *,
    name: str | None = None,
    labels: str | Sequence[str] | None = None,
    prompt_style: str = DEFAULT_PROMPT_STYLE,
    captions: str | Path | None = None,
    limit: int = 0,
    check_images: bool = True,
) -> Benchmark:
    """Read and check one benchmark: every image exists, every gold label is a candidate."""
    csv_path, images = Path(csv_path), Path(images)
    kind, every = read_csv(csv_path)
    # The label set is the whole CSV's, whatever `limit` keeps: a smoke run on the first
    # rows asks the question the full run asks.
    items = every[:limit] if limit else every
    if not images.is_dir():
        raise BenchmarkError(f"image folder {images} does not exist")
    if check_images:
        missing = [it for it in items if not (images / it.image).is_file()]
        if missing:
            shown = ", ".join(f"row {it.row}: {it.image}" for it in missing[:5])
            raise BenchmarkError(
                f"{csv_path}: {len(missing)} of {len(items)} images not found under {images} "
                f"({shown})"
            )
    bench = Benchmark(
        name=name or csv_path.stem, csv=csv_path, images=images, kind=kind, items=items
    )
    if kind == CLASSIFICATION:
        fixed = parse_labels(labels)
        if fixed:
            known = {normalise(label) for label in fixed}
            outside = sorted(
                {c for it in every for c in it.categories if normalise(c) not in known}
            )
            if outside:
                raise BenchmarkError(
                    f"{csv_path}: categories {outside[:10]} are not among the --labels given; "
                    "a gold label no answer can match would only lower every score"
                )
            bench.labels = fixed
        else:
            bench.labels = labels_from_items(every)
        bench.prompt_style = prompt_style
        bench.prompt = build_prompt(prompt_style, bench.labels)
    elif captions:
        bench.modalities = read_captions(captions)
    return bench


def labels_from_items(items: Iterable[BenchmarkItem]) -> list[str]:
    """The label set of a CSV: its distinct categories (first spelling seen), sorted."""
    by_key: dict[str, str] = {}
    for it in items:
        for c in it.categories:
            by_key.setdefault(normalise(c), c)
    return [by_key[k] for k in sorted(by_key)]


# -- suites -----------------------------------------------------------------------------------
SUITE_KEYS = {"name", "csv", "images", "labels", "prompt_style", "captions", "limit"}


def load_suite(path: str | Path, images: str | Path | None = None) -> list[Benchmark]:
    """A YAML file listing benchmarks; relative paths are relative to the file.

    ```yaml
    images: /data/Dataset            # default image folder for every entry
    prompt_style: mmskin             # default prompt style
    benchmarks:
      - csv: classification/HAM10000_test.csv
      - name: DDI
        csv: classification/DDI_2class_test.csv
        labels: [Malignant, Non-Malignant]
      - csv: vqa/MM-Skin_test.csv
        images: /data/MM-Skin
    ```
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BenchmarkError(f"{path}: cannot read the suite: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BenchmarkError(f"{path}: a suite is a mapping with a `benchmarks` list")
    unknown = set(data) - {"images", "prompt_style", "benchmarks", "limit"}
    if unknown:
        raise BenchmarkError(f"{path}: unknown key(s) {sorted(unknown)}")
    root = path.parent
    default_style = data.get("prompt_style") or DEFAULT_PROMPT_STYLE

    def rel(p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else root / p

    out: list[Benchmark] = []
    names: set[str] = set()
    for i, entry in enumerate(data["benchmarks"], start=1):
        if not isinstance(entry, dict) or "csv" not in entry:
            raise BenchmarkError(f"{path}: benchmark {i} needs a `csv`")
        bad = set(entry) - SUITE_KEYS
        if bad:
            raise BenchmarkError(f"{path}: benchmark {i}: unknown key(s) {sorted(bad)}")
        folder = entry.get("images") or data.get("images") or images
        if not folder:
            raise BenchmarkError(f"{path}: benchmark {i} has no `images` folder")
        bench = load_benchmark(
            rel(entry["csv"]),
            rel(folder),
            name=entry.get("name"),
            labels=entry.get("labels"),
            prompt_style=entry.get("prompt_style") or default_style,
            captions=rel(entry["captions"]) if entry.get("captions") else None,
            limit=int(entry.get("limit", data.get("limit", 0)) or 0),
        )
        if bench.name in names:
            raise BenchmarkError(f"{path}: two benchmarks are named {bench.name!r}")
        names.add(bench.name)
        out.append(bench)
    if not out:
        raise BenchmarkError(f"{path}: the suite lists no benchmarks")
    return out


# -- matching ---------------------------------------------------------------------------------
_SEPARATORS = re.compile(r"[\s_\-/]+")
_DROP = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Case-folded, accents dropped, `-`/`_`/`/` read as spaces, other punctuation dropped,
    whitespace collapsed: "Non-Malignant" and "non malignant." are one label."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _SEPARATORS.sub(" ", text)
    return " ".join(_DROP.sub("", text).split())


NORMALISED_MATCH = (
    "normalised match: answer and labels case-folded, accents and punctuation dropped, "
    "-/_ read as spaces; an answer equal to a label is that label, else the label found as "
    "whole words earliest in the answer (the longest on ties); none found counts as wrong"
)


def match_normalised(answer: str, labels: Sequence[str]) -> str | None:
    """The label an answer names (see `NORMALISED_MATCH`).

    Whole words, unlike MM-Skin's substring test: "other" (a class of BCN20000 and MSKCC) is
    no longer found in "another" or "others", and "nevus" not in "nevuses"; and the earliest
    mention wins rather than the first label in the list, so "melanoma, not a nevus" is
    melanoma whichever order the labels are in.
    """
    ans = normalise(answer)
    best: tuple[int, int, int] | None = None
    for i, label in enumerate(labels):
        norm = normalise(label)
        if not norm:
            continue
        if ans == norm:
            return label
        m = re.search(rf"(?<!\w){re.escape(norm)}(?!\w)", ans)
        if m:
            key = (m.start(), -len(norm), i)
            if best is None or key < best:
                best = key
    return labels[best[2]] if best else None
