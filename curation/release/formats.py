"""The same data for other tools, generated from the canonical jsonl files (never from the DB).

Each layout is the one its consumer reads unchanged (tests/releases/test_consumers*.py load
every one with the consumer's own code):

- ``formats/mmskin/``: MM-Skin's CSVs. ``caption.csv`` (every split, with a ``diagnosis`` and
  a ``split`` column); per split ``VQA_<split>.csv`` with exactly MM-Skin's
  ``image,question,answer`` (its ``VQA_test.py`` scores every row of the file it is given) and
  ``classification_<split>.csv`` with MM-Skin's ``image,atributes,categories`` (its spelling),
  the categories a Python list literal like ``['Melanoma']`` (``ZS_classification.py`` runs
  ``eval`` on the cell). A text cell that a spreadsheet would run as a formula gets a leading
  ``'`` (``spreadsheet_safe``). The JSON, JSONL and Parquet files keep every text as it is.
- ``formats/llava/``: LLaVA conversation JSON (``<image>`` placeholder) per task and split, and
  ``<split>.json`` with captions and VQA together (``finetune_lora.sh`` takes one
  ``--data_path``).
- ``formats/sharegpt/``: ShareGPT conversations with a LLaMA-Factory ``dataset_info.json``
  (SFT, and DPO with ``ranking: true``).
- ``formats/hf/``: Parquet that Hugging Face ``datasets`` 3.x and newer load with images
  decoded: the ``default`` config (a row per pair with its VQA items) and ``preferences``
  (``images``, ``prompt``, ``chosen``, ``rejected`` in TRL's conversational format, which
  TRL's ``DPOTrainer`` takes as it is). Its validation split is named ``validation``, the
  name ``datasets`` gives it.

Image paths are relative to the release root everywhere: LLaVA's ``--image_folder``,
LLaMA-Factory's ``media_dir`` and the image folder of MM-Skin's scripts are the release root.
The Parquet files embed the image bytes.

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
HF_ROW_GROUP = 64
#: The split names of the Hugging Face layout: ``datasets`` calls the validation split so.
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}

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


CAPTION_COLUMNS = [
    "image", "caption", "modality", "sex", "age", "cleaned_caption", "diagnosis", "split",
]  # fmt: skip
#: MM-Skin's VQA CSVs (``Dataframe/test/vqa/MM-Skin_test.csv``): these three columns only.
VQA_COLUMNS = ["image", "question", "answer"]
#: MM-Skin's classification CSVs, "atributes" spelled as MM-Skin spells it.
CLASSIFICATION_COLUMNS = ["image", "atributes", "categories"]


def categories_cell(diagnosis: str) -> str:
    """MM-Skin's ``categories`` cell: a Python list literal, ``['Melanoma']``.

    ``repr`` writes a literal that ``eval`` (what MM-Skin's script runs on the cell) and
    ``ast.literal_eval`` read back as exactly the diagnosis, whatever quotes it holds.
    """
    return repr([diagnosis])


class MMSkinWriter(FormatWriter):
    def __init__(self, out: Path) -> None:
        super().__init__()
        out.mkdir(parents=True, exist_ok=True)
        self._captions = self._csv(out / "caption.csv", CAPTION_COLUMNS)
        self._vqa = {s: self._csv(out / f"VQA_{s}.csv", VQA_COLUMNS) for s in SPLITS}
        self._classes = {
            s: self._csv(out / f"classification_{s}.csv", CLASSIFICATION_COLUMNS) for s in SPLITS
        }

    def _csv(self, path: Path, columns: list[str]):
        fh = self._stack.enter_context(open(path, "w", encoding="utf-8", newline=""))  # noqa: SIM115
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(columns)
        return writer

    def pair(self, p: Record, items: list[Record]) -> None:
        age = "" if p.get("age") is None else p["age"]
        diagnosis = (p.get("diagnosis") or "").strip()
        self._captions.writerow(
            [p["image"], p["caption"], p["modality"], p.get("sex") or "", age,
             clean_caption(p["caption"]), diagnosis, p["split"]]
        )  # fmt: skip
        if diagnosis:  # a pair without a diagnosis has no class to score
            self._classes[p["split"]].writerow([p["image"], "[]", categories_cell(diagnosis)])
        for q in items:
            self._vqa[q["split"]].writerow([q["image"], q["question"], q["answer"]])


# -- LLaVA ------------------------------------------------------------------------------------
def _llava(item_id: str, image: str, prompt: str, answer: str) -> Record:
    return {
        "id": item_id,
        "image": image,
        "conversations": [
            {"from": "human", "value": f"<image>\n{prompt}"},
            {"from": "gpt", "value": answer},
        ],
    }


class LlavaWriter(FormatWriter):
    """Per task and split (``caption_train.json``...), and per split with both tasks."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self._captions = self._arrays(out, "caption")
        self._vqa = self._arrays(out, "vqa")
        self._combined = {
            s: self._stack.enter_context(JsonArrayWriter(out / f"{s}.json")) for s in SPLITS
        }

    def pair(self, p: Record, items: list[Record]) -> None:
        caption = _llava(p["id"], p["image"], CAPTION_PROMPT, p["caption"])
        self._captions[p["split"]].write(caption)
        self._combined[p["split"]].write(caption)
        for q in items:
            row = _llava(q["id"], q["image"], q["question"], q["answer"])
            self._vqa[q["split"]].write(row)
            self._combined[q["split"]].write(row)


# -- ShareGPT + LLaMA-Factory -------------------------------------------------------------------
def dataset_info() -> dict:
    """LLaMA-Factory's registry of the ShareGPT files, one entry per task and split.

    LLaMA-Factory reads it from ``dataset_dir`` (``formats/sharegpt``) and joins each image
    path to ``media_dir``, which is the release root.
    """
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
        return [rel]  # relative to the release root: LLaMA-Factory's ``media_dir``

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
# The features are written in the JSON that ``datasets`` 3.x and 4.x+ both read: a list
# feature as a JSON list ``[feature]``. (``{"_type": "List"}`` exists only from 4.0 on, and
# 3.x failed on it.)
def _value(dtype: str = "string") -> dict:
    return {"dtype": dtype, "_type": "Value"}


_IMAGE_FEATURE = {"_type": "Image"}
_QA_FIELDS = ("id", "question_type", "question", "answer")
#: A chat message in TRL's conversational format: ``content`` is a list of typed parts,
#: ``{"type": "image"}`` (the image placeholder; ``text`` is null) or ``{"type": "text"}``.
_MESSAGE_FEATURE = [
    {"role": _value(), "content": [{"type": _value(), "text": _value()}]},
]


def _pairs_features() -> dict:
    return {
        "id": _value(),
        "image": _IMAGE_FEATURE,
        "caption": _value(),
        "cleaned_caption": _value(),
        "modality": _value(),
        "diagnosis": _value(),
        "age": _value("int32"),
        "sex": _value(),
        "split": _value(),
        "book": _value(),
        "page": _value("int32"),
        "figure": _value(),
        "vqa": [{k: _value() for k in _QA_FIELDS}],
    }


def _preference_features() -> dict:
    return {
        "id": _value(),
        "pair_id": _value(),
        "question_type": _value(),
        "images": [_IMAGE_FEATURE],
        "prompt": _MESSAGE_FEATURE,
        "chosen": _MESSAGE_FEATURE,
        "rejected": _MESSAGE_FEATURE,
        "source": _value(),
        "split": _value(),
    }


def _arrow_type(feature):
    """The Arrow type ``datasets`` stores a feature (in the JSON above) as."""
    import pyarrow as pa

    if isinstance(feature, list):
        return pa.list_(_arrow_type(feature[0]))
    kind = feature.get("_type")
    if kind == "Image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if kind == "Value":
        return {"string": pa.string(), "int32": pa.int32()}[feature["dtype"]]
    return pa.struct([(k, _arrow_type(v)) for k, v in feature.items()])


def _hf_schema(features: dict):
    import pyarrow as pa

    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema([(k, _arrow_type(v)) for k, v in features.items()], metadata=meta)


HF_IMAGE_BYTES = ("image.bytes", "images.list.element.bytes")


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


HF_CONFIGS = {"default": "data", "preferences": "preferences"}

HF_README = """---
configs:
{configs}
---
# {name} {version} (Hugging Face layout)

- `default`: one row per image-caption pair, the image embedded and decoded by `datasets`, with
  the pair's reviewed VQA items in the `vqa` list.
- `preferences`: one row per expert correction of an LLM answer: `images`, `prompt`, `chosen`,
  `rejected` in TRL's conversational format (the prompt holds an image placeholder), which
  TRL's `DPOTrainer` trains on as it is.

The splits are `train`, `validation` and `test`. Load them with:

```python
from datasets import load_dataset
pairs = load_dataset("formats/hf")  # pairs["validation"], ...
preferences = load_dataset("formats/hf", "preferences", split="train")
```

See `../../DATASET_CARD.md` for how the data was made.
"""


class _ParquetSplits:
    """One Parquet file per split, rows buffered a row group (64 rows) at a time."""

    def __init__(self, stack: ExitStack, folder: Path, features: dict) -> None:
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        self._schema = _hf_schema(features)
        # The image bytes are PNG/JPEG already: zstd, a dictionary or min/max statistics of
        # them cost time and gain nothing. Every other column is zstd-compressed.
        columns = [c for c in _leaf_columns(self._schema) if c not in HF_IMAGE_BYTES]
        images = [c for c in _leaf_columns(self._schema) if c in HF_IMAGE_BYTES]
        options = {
            "compression": {**dict.fromkeys(images, "none"), **dict.fromkeys(columns, "zstd")},
            "use_dictionary": columns,
            "write_statistics": columns,
        }
        self._writers = {
            s: stack.enter_context(
                pq.ParquetWriter(
                    folder / f"{HF_SPLITS[s]}-00000-of-00001.parquet", self._schema, **options
                )
            )
            for s in SPLITS
        }
        self._buffers: dict[str, list[dict]] = {s: [] for s in SPLITS}

    def add(self, split: str, row: dict) -> None:
        buffer = self._buffers[split]
        buffer.append(row)
        if len(buffer) >= HF_ROW_GROUP:
            self._flush(split)

    def _flush(self, split: str) -> None:
        import pyarrow as pa

        if self._buffers[split]:
            table = pa.Table.from_pylist(self._buffers[split], schema=self._schema)
            self._writers[split].write_table(table)
            self._buffers[split] = []

    def finish(self) -> None:
        for split in SPLITS:
            self._flush(split)


def _text_message(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": [{"type": "text", "text": text}]}]


def trl_preference(r: Record) -> dict:
    """A line of ``preferences.jsonl`` as TRL's conversational preference example (no image).

    The prompt is the user's turn with the image placeholder before the question, so that the
    processor's chat template puts the model's image token there.
    """
    return {
        "prompt": [
            {
                "role": "user",
                "content": [{"type": "image", "text": None}, {"type": "text", "text": r["prompt"]}],
            }
        ],
        "chosen": _text_message("assistant", r["chosen"]),
        "rejected": _text_message("assistant", r["rejected"]),
    }


class HFWriter(FormatWriter):
    """The ``default`` (pairs) and ``preferences`` configs, one Parquet file per split each."""

    def __init__(self, root: Path, out: Path, *, name: str = "", version: str = "") -> None:
        super().__init__()
        self._root, self._out, self._name, self._version = root, out, name, version
        self._pairs = _ParquetSplits(self._stack, out / HF_CONFIGS["default"], _pairs_features())
        self._preferences = _ParquetSplits(
            self._stack, out / HF_CONFIGS["preferences"], _preference_features()
        )

    def _image(self, rel: str) -> dict:
        return {"bytes": (self._root / rel).read_bytes(), "path": rel.rsplit("/", 1)[-1]}

    def pair(self, p: Record, items: list[Record]) -> None:
        prov = p["provenance"]
        row = {
            "id": p["id"],
            "image": self._image(p["image"]),
            "caption": p["caption"],
            "cleaned_caption": clean_caption(p["caption"]),
            "modality": p["modality"],
            "diagnosis": p.get("diagnosis"),
            "age": p.get("age"),
            "sex": p.get("sex"),
            "split": HF_SPLITS[p["split"]],
            "book": prov["book"]["title"],
            "page": prov["page"],
            "figure": prov["figure"]["label"],
            "vqa": [{k: q[k] for k in _QA_FIELDS} for q in items],
        }
        self._pairs.add(p["split"], row)

    def preference(self, r: Record) -> None:
        row = {
            "id": r["id"],
            "pair_id": r["pair_id"],
            "question_type": r.get("question_type"),
            "images": [self._image(r["image"])],
            **trl_preference(r),
            "source": r["source"],
            "split": HF_SPLITS[r["split"]],
        }
        self._preferences.add(r["split"], row)

    def finish(self) -> None:
        self._pairs.finish()
        self._preferences.finish()
        configs = []
        for config, folder in HF_CONFIGS.items():
            configs.append(f"- config_name: {config}\n  data_files:")
            configs += [
                f"  - split: {HF_SPLITS[s]}\n    path: {folder}/{HF_SPLITS[s]}-*.parquet"
                for s in SPLITS
            ]
        (self._out / "README.md").write_text(
            HF_README.format(
                configs="\n".join(configs), name=self._name or "release", version=self._version
            ),
            encoding="utf-8",
        )
