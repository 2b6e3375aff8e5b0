"""The same data for other tools, generated from the canonical jsonl files (never from the DB).

- ``formats/mmskin/``: MM-Skin's ``caption.csv`` and ``VQA.csv``.
- ``formats/llava/``: LLaVA conversation JSON (``<image>`` placeholder), per task and split.
- ``formats/sharegpt/``: ShareGPT conversations + images, with a LLaMA-Factory
  ``dataset_info.json`` (SFT, and DPO with ``ranking: true``).
- ``formats/hf/``: Parquet that Hugging Face ``datasets`` loads with images decoded.

Image paths: relative to the release root in the CSVs and LLaVA JSON (LLaVA's
``--image_folder`` is the release root); relative to ``formats/sharegpt/`` in the ShareGPT
files, which is LLaMA-Factory's default ``media_dir`` when ``dataset_dir`` points there.
"""

from __future__ import annotations

import csv
import json
import re
from contextlib import ExitStack
from pathlib import Path

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


def write_formats(root: Path, *, name: str = "", version: str = "") -> None:
    out = root / "formats"
    write_mmskin(root, out / "mmskin")
    write_llava(root, out / "llava")
    write_sharegpt(root, out / "sharegpt")
    write_hf(root, out / "hf", name=name, version=version)


# -- MM-Skin CSVs ----------------------------------------------------------------------------
CAPTION_COLUMNS = ["image", "caption", "modality", "sex", "age", "cleaned_caption", "split"]
VQA_COLUMNS = ["image", "question", "answer", "question_type", "split"]


def write_mmskin(root: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "caption.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CAPTION_COLUMNS)
        for p in iter_jsonl(root / "pairs.jsonl"):
            age = "" if p.get("age") is None else p["age"]
            writer.writerow(
                [p["image"], p["caption"], p["modality"], p.get("sex") or "", age,
                 clean_caption(p["caption"]), p["split"]]
            )  # fmt: skip
    with open(out / "VQA.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(VQA_COLUMNS)
        for q in iter_jsonl(root / "vqa.jsonl"):
            writer.writerow(
                [q["image"], q["question"], q["answer"], q["question_type"], q["split"]]
            )


# -- LLaVA ------------------------------------------------------------------------------------
def write_llava(root: Path, out: Path) -> None:
    with ExitStack() as stack:
        caption = {
            s: stack.enter_context(JsonArrayWriter(out / f"caption_{s}.json")) for s in SPLITS
        }
        for p in iter_jsonl(root / "pairs.jsonl"):
            caption[p["split"]].write(
                {
                    "id": p["id"],
                    "image": p["image"],
                    "conversations": [
                        {"from": "human", "value": f"<image>\n{CAPTION_PROMPT}"},
                        {"from": "gpt", "value": p["caption"]},
                    ],
                }
            )
    with ExitStack() as stack:
        vqa = {s: stack.enter_context(JsonArrayWriter(out / f"vqa_{s}.json")) for s in SPLITS}
        for q in iter_jsonl(root / "vqa.jsonl"):
            vqa[q["split"]].write(
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


def write_sharegpt(root: Path, out: Path) -> None:
    def image(rel: str) -> list[str]:
        return [SHAREGPT_IMAGE_PREFIX + rel]

    with ExitStack() as stack:
        caption = {
            s: stack.enter_context(JsonArrayWriter(out / f"caption_{s}.json")) for s in SPLITS
        }
        for p in iter_jsonl(root / "pairs.jsonl"):
            caption[p["split"]].write(
                {
                    "conversations": [
                        {"from": "human", "value": f"<image>{CAPTION_PROMPT}"},
                        {"from": "gpt", "value": p["caption"]},
                    ],
                    "images": image(p["image"]),
                }
            )
    with ExitStack() as stack:
        sft = {s: stack.enter_context(JsonArrayWriter(out / f"sft_{s}.json")) for s in SPLITS}
        for q in iter_jsonl(root / "vqa.jsonl"):
            sft[q["split"]].write(
                {
                    "conversations": [
                        {"from": "human", "value": f"<image>{q['question']}"},
                        {"from": "gpt", "value": q["answer"]},
                    ],
                    "images": image(q["image"]),
                }
            )
    with ExitStack() as stack:
        dpo = {s: stack.enter_context(JsonArrayWriter(out / f"dpo_{s}.json")) for s in SPLITS}
        for r in iter_jsonl(root / "preferences.jsonl"):
            dpo[r["split"]].write(
                {
                    "conversations": [{"from": "human", "value": f"<image>{r['prompt']}"}],
                    "chosen": {"from": "gpt", "value": r["chosen"]},
                    "rejected": {"from": "gpt", "value": r["rejected"]},
                    "images": image(r["image"]),
                }
            )
    (out / "dataset_info.json").write_text(
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


def write_hf(root: Path, out: Path, *, name: str = "", version: str = "") -> None:
    """One Parquet file per split. Rows are buffered a row group (64 pairs) at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    schema = _hf_schema()
    writers = {
        s: pq.ParquetWriter(data / f"{s}-00000-of-00001.parquet", schema, compression="zstd")
        for s in SPLITS
    }
    buffers: dict[str, list[dict]] = {s: [] for s in SPLITS}

    def flush(split: str) -> None:
        if buffers[split]:
            writers[split].write_table(pa.Table.from_pylist(buffers[split], schema=schema))
            buffers[split] = []

    vqa_iter = iter_jsonl(root / "vqa.jsonl")
    pending = next(vqa_iter, None)
    try:
        for p in iter_jsonl(root / "pairs.jsonl"):
            # vqa.jsonl is written pair by pair, in the order of pairs.jsonl: a merge join.
            items = []
            while pending is not None and pending["pair_id"] == p["id"]:
                items.append({k: pending[k] for k in ("id", "question_type", "question", "answer")})
                pending = next(vqa_iter, None)
            prov = p["provenance"]
            row = {
                "id": p["id"],
                "image": {
                    "bytes": (root / p["image"]).read_bytes(),
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
                "vqa": items,
            }
            buffers[p["split"]].append(row)
            if len(buffers[p["split"]]) >= HF_ROW_GROUP:
                flush(p["split"])
        for split in SPLITS:
            flush(split)
    finally:
        for writer in writers.values():
            writer.close()
    lines = []
    for split in SPLITS:
        lines.append(f"  - split: {split}\n    path: data/{split}-*.parquet")
    (out / "README.md").write_text(
        HF_README.format(data_files="\n".join(lines), name=name or "release", version=version),
        encoding="utf-8",
    )
