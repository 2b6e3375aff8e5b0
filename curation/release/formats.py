"""The same data for other tools, generated from the canonical jsonl files (never from the DB).

- ``formats/mmskin/``: MM-Skin's ``caption.csv`` and ``VQA.csv``; a text cell that a
  spreadsheet would run as a formula gets a leading ``'`` (``spreadsheet_safe``). The JSON,
  JSONL and Parquet files keep every text as it is.
- ``formats/llava/``: LLaVA conversation JSON (``<image>`` placeholder), per task and split.
- ``formats/sharegpt/``: ShareGPT conversations + images, with a LLaMA-Factory
  ``dataset_info.json`` (SFT, and DPO with ``ranking: true``).
- ``formats/hf/``: Parquet that Hugging Face ``datasets`` loads with images decoded.

Image paths: relative to the release root in the CSVs and LLaVA JSON (LLaVA's
``--image_folder`` is the release root); relative to ``formats/sharegpt/`` in the ShareGPT
files, which is LLaMA-Factory's default ``media_dir`` when ``dataset_dir`` points there.

Each format is a small writer (``FormatWriter``) fed each pair with its VQA items, then each
preference. One pass over the canonical files feeds them all (``vqa.jsonl`` is written pair by
pair in the order of ``pairs.jsonl``, so each pair gets its items by a merge join): every line
is parsed once, whatever the number of formats, and only one Parquet row group per split is
buffered.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from curation.release.jsonio import JsonArrayWriter, iter_jsonl
from curation.release.records import SPLITS

CAPTION_PROMPT = "Describe this dermatology image."
SHAREGPT_IMAGE_PREFIX = "../../"
HF_ROW_GROUP = 64

_FIG_REF = re.compile(r"\b(?:fig(?:ure)?s?\.?)\s*\d+(?:[.\-]\d+)*[a-z]?\b", re.IGNORECASE)
_PANEL_MARK = re.compile(
    r"\(\s*[a-h](?:\s*[,\-\u2013]\s*[a-h])*\s*\)|^\s*[a-h][.):]\s+", re.IGNORECASE
)
_ARROWS = re.compile(r"\(\s*(?:arrows?|arrowheads?|asterisks?|circled?)[^)]*\)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean_caption(text: str) -> str:
    """The caption without figure numbers, panel letters and pointer notes (MM-Skin's column)."""
    text = _FIG_REF.sub("", text)
    text = _ARROWS.sub("", text)
    text = _PANEL_MARK.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    return text.lstrip(".:;, ").rstrip(",;: ").strip()


Record = dict[str, Any]


class FormatError(ValueError):
    """The canonical files are not in the shape the formats are generated from."""


def pairs_with_vqa(root: Path) -> Iterator[tuple[Record, list[Record]]]:
    """Each line of ``pairs.jsonl`` with its lines of ``vqa.jsonl`` (a merge join)."""
    vqa = iter_jsonl(root / "vqa.jsonl")
    pending = next(vqa, None)
    for pair in iter_jsonl(root / "pairs.jsonl"):
        items = []
        while pending is not None and pending["pair_id"] == pair["id"]:
            items.append(pending)
            pending = next(vqa, None)
        yield pair, items
    if pending is not None:
        raise FormatError(f"vqa.jsonl is not in the order of pairs.jsonl at {pending['id']}")


def write_formats(root: Path, *, name: str = "", version: str = "") -> None:
    out = root / "formats"
    with ExitStack() as stack:
        writers = [
            stack.enter_context(MMSkinWriter(out / "mmskin")),
            stack.enter_context(LlavaWriter(out / "llava")),
            stack.enter_context(ShareGPTWriter(out / "sharegpt")),
            stack.enter_context(HFWriter(root, out / "hf", name=name, version=version)),
        ]
        for pair, items in pairs_with_vqa(root):
            for writer in writers:
                writer.pair(pair, items)
        for preference in iter_jsonl(root / "preferences.jsonl"):
            for writer in writers:
                writer.preference(preference)


class FormatWriter:
    """One format's files, written as the canonical records stream past.

    Used as a context manager: ``finish`` writes what comes last (buffered rows, an index
    file) when the records ended without an error; the open files are closed either way.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()

    def pair(self, pair: Record, items: list[Record]) -> None:
        """A line of ``pairs.jsonl`` and its lines of ``vqa.jsonl``."""

    def preference(self, record: Record) -> None:
        """A line of ``preferences.jsonl``."""

    def finish(self) -> None:
        """Write what comes after the last record."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        with self._stack:
            if exc_type is None:
                self.finish()

    def _arrays(self, out: Path, task: str) -> dict[str, JsonArrayWriter]:
        return {
            s: self._stack.enter_context(JsonArrayWriter(out / f"{task}_{s}.json")) for s in SPLITS
        }


# -- MM-Skin CSVs ----------------------------------------------------------------------------
# A spreadsheet runs a cell that begins with one of these as a formula (or, for tab and CR,
# may strip them and run what follows): OWASP's CSV-injection list.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: a leading ``'`` when it could start a formula.

    Only text is escaped. Numbers (``age``) are written as numbers, a negative one too: it is
    a value, not a formula, and a ``'`` would turn the column into text for every reader.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SpreadsheetSafeWriter:
    """``csv.writer`` whose every text cell goes through ``spreadsheet_safe``."""

    def __init__(self, fh) -> None:
        # CRLF rows (RFC 4180): Python's csv module quotes a cell only for the characters of
        # the line terminator, so with "\n" a CR inside a caption went out bare, and a
        # spreadsheet started a new row there whose first cell was not escaped.
        self._writer = csv.writer(fh, lineterminator="\r\n")

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in row])


CAPTION_COLUMNS = ["image", "caption", "modality", "sex", "age", "cleaned_caption", "split"]
VQA_COLUMNS = ["image", "question", "answer", "question_type", "split"]


class MMSkinWriter(FormatWriter):
    def __init__(self, out: Path) -> None:
        super().__init__()
        out.mkdir(parents=True, exist_ok=True)
        self._captions = self._csv(out / "caption.csv", CAPTION_COLUMNS)
        self._vqa = self._csv(out / "VQA.csv", VQA_COLUMNS)

    def _csv(self, path: Path, columns: list[str]):
        fh = self._stack.enter_context(open(path, "w", encoding="utf-8", newline=""))  # noqa: SIM115
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(columns)
        return writer

    def pair(self, p: Record, items: list[Record]) -> None:
        age = "" if p.get("age") is None else p["age"]
        self._captions.writerow(
            [p["image"], p["caption"], p["modality"], p.get("sex") or "", age,
             clean_caption(p["caption"]), p["split"]]
        )  # fmt: skip
        for q in items:
            self._vqa.writerow(
                [q["image"], q["question"], q["answer"], q["question_type"], q["split"]]
            )


# -- LLaVA ------------------------------------------------------------------------------------
class LlavaWriter(FormatWriter):
    def __init__(self, out: Path) -> None:
        super().__init__()
        self._captions = self._arrays(out, "caption")
        self._vqa = self._arrays(out, "vqa")

    def pair(self, p: Record, items: list[Record]) -> None:
        self._captions[p["split"]].write(
            {
                "id": p["id"],
                "image": p["image"],
                "conversations": [
                    {"from": "human", "value": f"<image>\n{CAPTION_PROMPT}"},
                    {"from": "gpt", "value": p["caption"]},
                ],
            }
        )
        for q in items:
            self._vqa[q["split"]].write(
                {
                    "id": q["id"],
                    "image": q["image"],
                    "conversations": [
                        {"from": "human", "value": f"<image>\n{q['question']}"},
                        {"from": "gpt", "value": q["answer"]},
                    ],
                }
            )


# -- ShareGPT + LLaMA-Factory -------------------------------------------------------------------
def dataset_info() -> dict:
    """LLaMA-Factory's registry of the ShareGPT files, one entry per task and split."""
    info: dict[str, dict] = {}
    for split in SPLITS:
        for task in ("caption", "sft"):
            info[f"mmskin_{task}_{split}"] = {
                "file_name": f"{task}_{split}.json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "images": "images"},
            }
        info[f"mmskin_dpo_{split}"] = {
            "file_name": f"dpo_{split}.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {
                "messages": "conversations",
                "chosen": "chosen",
                "rejected": "rejected",
                "images": "images",
            },
        }
    return info


class ShareGPTWriter(FormatWriter):
    def __init__(self, out: Path) -> None:
        super().__init__()
        self._out = out
        self._captions = self._arrays(out, "caption")
        self._sft = self._arrays(out, "sft")
        self._dpo = self._arrays(out, "dpo")

    @staticmethod
    def _image(rel: str) -> list[str]:
        return [SHAREGPT_IMAGE_PREFIX + rel]

    def pair(self, p: Record, items: list[Record]) -> None:
        self._captions[p["split"]].write(
            {
                "conversations": [
                    {"from": "human", "value": f"<image>{CAPTION_PROMPT}"},
                    {"from": "gpt", "value": p["caption"]},
                ],
                "images": self._image(p["image"]),
            }
        )
        for q in items:
            self._sft[q["split"]].write(
                {
                    "conversations": [
                        {"from": "human", "value": f"<image>{q['question']}"},
                        {"from": "gpt", "value": q["answer"]},
                    ],
                    "images": self._image(q["image"]),
                }
            )

    def preference(self, r: Record) -> None:
        self._dpo[r["split"]].write(
            {
                "conversations": [{"from": "human", "value": f"<image>{r['prompt']}"}],
                "chosen": {"from": "gpt", "value": r["chosen"]},
                "rejected": {"from": "gpt", "value": r["rejected"]},
                "images": self._image(r["image"]),
            }
        )

    def finish(self) -> None:
        (self._out / "dataset_info.json").write_text(
            json.dumps(dataset_info(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )


# -- Hugging Face datasets -----------------------------------------------------------------
def _hf_features() -> dict:
    def value(dtype: str) -> dict:
        return {"dtype": dtype, "_type": "Value"}

    qa = {
        "id": value("string"),
        "question_type": value("string"),
        "question": value("string"),
        "answer": value("string"),
    }
    return {
        "id": value("string"),
        "image": {"_type": "Image"},
        "caption": value("string"),
        "cleaned_caption": value("string"),
        "modality": value("string"),
        "diagnosis": value("string"),
        "age": value("int32"),
        "sex": value("string"),
        "split": value("string"),
        "book": value("string"),
        "page": value("int32"),
        "figure": value("string"),
        "vqa": {"feature": qa, "_type": "List"},
    }


def _hf_schema():
    import pyarrow as pa

    qa = pa.struct([(k, pa.string()) for k in ("id", "question_type", "question", "answer")])
    fields = [
        ("id", pa.string()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("caption", pa.string()),
        ("cleaned_caption", pa.string()),
        ("modality", pa.string()),
        ("diagnosis", pa.string()),
        ("age", pa.int32()),
        ("sex", pa.string()),
        ("split", pa.string()),
        ("book", pa.string()),
        ("page", pa.int32()),
        ("figure", pa.string()),
        ("vqa", pa.list_(qa)),
    ]
    meta = {"huggingface": json.dumps({"info": {"features": _hf_features()}})}
    return pa.schema(fields, metadata=meta)


HF_IMAGE_BYTES = "image.bytes"


def _leaf_columns(schema) -> list[str]:
    """Parquet's dotted paths of the leaf columns (``vqa.list.element.id``...)."""
    import pyarrow as pa

    def walk(prefix: str, dtype) -> list[str]:
        if pa.types.is_struct(dtype):
            return [p for f in dtype for p in walk(f"{prefix}.{f.name}", f.type)]
        if pa.types.is_list(dtype):
            return walk(f"{prefix}.list.element", dtype.value_type)
        return [prefix]

    return [p for f in schema for p in walk(f.name, f.type)]


HF_README = """---
configs:
- config_name: default
  data_files:
{data_files}
---
# {name} {version} (Hugging Face layout)

One row per image-caption pair, the image embedded and decoded by `datasets`, with the pair's
reviewed VQA items in the `vqa` list. Load it with:

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_dir="formats/hf/data")  # or load_dataset("formats/hf")
```

See `../../DATASET_CARD.md` for how the data was made.
"""


class HFWriter(FormatWriter):
    """One Parquet file per split. Rows are buffered a row group (64 pairs) at a time."""

    def __init__(self, root: Path, out: Path, *, name: str = "", version: str = "") -> None:
        import pyarrow.parquet as pq

        super().__init__()
        self._root, self._out, self._name, self._version = root, out, name, version
        data = out / "data"
        data.mkdir(parents=True, exist_ok=True)
        self._schema = _hf_schema()
        # The image bytes are PNG/JPEG already: zstd, a dictionary or min/max statistics of
        # them cost time and gain nothing. Every other column is zstd-compressed.
        columns = [c for c in _leaf_columns(self._schema) if c != HF_IMAGE_BYTES]
        options = {
            "compression": {HF_IMAGE_BYTES: "none", **dict.fromkeys(columns, "zstd")},
            "use_dictionary": columns,
            "write_statistics": columns,
        }
        self._writers = {}
        for s in SPLITS:
            path = data / f"{s}-00000-of-00001.parquet"
            self._writers[s] = self._stack.enter_context(
                pq.ParquetWriter(path, self._schema, **options)
            )
        self._buffers: dict[str, list[dict]] = {s: [] for s in SPLITS}

    def _flush(self, split: str) -> None:
        import pyarrow as pa

        if self._buffers[split]:
            table = pa.Table.from_pylist(self._buffers[split], schema=self._schema)
            self._writers[split].write_table(table)
            self._buffers[split] = []

    def pair(self, p: Record, items: list[Record]) -> None:
        prov = p["provenance"]
        row = {
            "id": p["id"],
            "image": {
                "bytes": (self._root / p["image"]).read_bytes(),
                "path": p["image"].rsplit("/", 1)[-1],
            },
            "caption": p["caption"],
            "cleaned_caption": clean_caption(p["caption"]),
            "modality": p["modality"],
            "diagnosis": p.get("diagnosis"),
            "age": p.get("age"),
            "sex": p.get("sex"),
            "split": p["split"],
            "book": prov["book"]["title"],
            "page": prov["page"],
            "figure": prov["figure"]["label"],
            "vqa": [
                {k: q[k] for k in ("id", "question_type", "question", "answer")} for q in items
            ],
        }
        buffer = self._buffers[p["split"]]
        buffer.append(row)
        if len(buffer) >= HF_ROW_GROUP:
            self._flush(p["split"])

    def finish(self) -> None:
        for split in SPLITS:
            self._flush(split)
        lines = [f"  - split: {s}\n    path: data/{s}-*.parquet" for s in SPLITS]
        (self._out / "README.md").write_text(
            HF_README.format(
                data_files="\n".join(lines), name=self._name or "release", version=self._version
            ),
            encoding="utf-8",
        )
