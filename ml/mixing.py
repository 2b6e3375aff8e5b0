"""Public LLaVA-format datasets mixed into a run (`data.extra`), with per-source counts.

SkinVL-Pub and SkinVL-PubMM were trained on LLaVA conversation JSON: MM-Skin's
`Dataframe/Pretrain/vqa_*.json` are read by LLaVA's `LazySupervisedDataset` (`finetune_lora.sh`
passes one `--data_path` and one `--image_folder`), i.e. a JSON array of records

    {"id": ..., "image": "relative/path.jpg",
     "conversations": [{"from": "human", "value": "<image>\\nQuestion"},
                       {"from": "gpt", "value": "Answer"}, ...]}

with the image path relative to the image folder. The release's own `formats/llava/*.json`
are the same layout, with the release root as image folder. Each source is one entry of
`data.extra` with its image root and a sampling weight; the release itself is the source
`release`, weighted by `data.release_weight`.

A weight is how many times per epoch a source's examples are seen on average: 1 each once,
2 each twice, 0.5 a seeded random half, 0 none (a release kept for its test split only).
Examples that cannot teach anything are skipped and counted per source and reason: an empty
answer (the model would learn to stop at once), no image, a conversation with no answer.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.chat import Message, assistant_turn, user_turn
from ml.collator import ChatExample
from ml.config import DataConfig, ExtraDataset

log = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
USER_ROLES = {"human", "user"}
ASSISTANT_ROLES = {"gpt", "assistant"}
RELEASE_SOURCE = "release"


class DatasetFormatError(ValueError):
    """A data.extra file that is not LLaVA conversation JSON."""


@dataclass
class SourceCounts:
    """What one source held, what was skipped (by reason) and what an epoch draws from it."""

    records: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: int = 0
    weight: float = 1.0
    drawn: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "skipped": dict(sorted(self.skipped.items())),
            "examples": self.examples,
            "weight": self.weight,
            "drawn_per_epoch": self.drawn,
        }


def source_name(extra: ExtraDataset) -> str:
    """The source's name in counts and logs: its `name`, else the file's stem."""
    return extra.name or Path(extra.path).stem


def _messages(turns: list[Any], where: str) -> list[Message] | str:
    """LLaVA turns as chat messages, or the reason to skip the record."""
    messages: list[Message] = []
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise DatasetFormatError(f"{where}: conversations[{j}] needs 'from' and 'value'")
        role, value = str(turn["from"]).lower(), turn["value"]
        if not isinstance(value, str):
            raise DatasetFormatError(f"{where}: conversations[{j}].value must be a string")
        text = value.replace(IMAGE_PLACEHOLDER, "").strip()
        if role == "system":
            continue
        if role in USER_ROLES:
            if messages and messages[-1]["role"] == "user":
                raise DatasetFormatError(f"{where}: two user turns in a row at {j}")
            messages.append(user_turn(text, with_image=not messages))
        elif role in ASSISTANT_ROLES:
            if not messages:
                continue  # LLaVA drops a conversation's leading non-human turn too
            if messages[-1]["role"] != "user":
                raise DatasetFormatError(f"{where}: two answers in a row at {j}")
            if not text:
                return "empty_answer"
            messages.append(assistant_turn(text))
        else:
            raise DatasetFormatError(f"{where}: unknown speaker {turn['from']!r} at {j}")
    if not any(m["role"] == "assistant" for m in messages):
        return "no_answer"
    return messages


def read_llava_json(extra: ExtraDataset) -> tuple[list[ChatExample], SourceCounts]:
    """One `data.extra` source as chat examples, skipping (and counting) what cannot train."""
    path = Path(extra.path)
    name = source_name(extra)
    root = Path(extra.image_root) if extra.image_root else path.parent
    if not path.is_file():
        raise FileNotFoundError(f"data.extra {name!r}: {path} does not exist")
    if not root.is_dir():
        raise FileNotFoundError(f"data.extra {name!r}: image_root {root} is not a folder")
    try:
        records = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise DatasetFormatError(f"data.extra {name!r}: {path} is not JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DatasetFormatError(f"data.extra {name!r}: {path} must hold a JSON array")
    counts = SourceCounts(records=len(records), weight=float(extra.weight))
    examples: list[ChatExample] = []
    missing: list[str] = []
    for i, record in enumerate(records):
        where = f"{path}[{i}]"
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            raise DatasetFormatError(f"{where}: a record needs a 'conversations' list")
        if not record.get("image"):
            counts.skipped["no_image"] += 1  # text-only: the collator needs an image
            continue
        image = root / str(record["image"])
        if not image.is_file():
            missing.append(str(record["image"]))
            continue
        messages = _messages(record["conversations"], where)
        if isinstance(messages, str):
            counts.skipped[messages] += 1
            continue
        meta = {"id": record.get("id", i), "kind": "extra", "source": name}
        examples.append(ChatExample(image=image, messages=messages, meta=meta))
    if missing:
        raise FileNotFoundError(
            f"data.extra {name!r}: {len(missing)} image(s) not under {root}, e.g. "
            f"{missing[:3]}; is image_root the folder the paths are relative to?"
        )
    counts.examples = len(examples)
    return examples, counts


def draw(items: list[Any], weight: float, rng: random.Random) -> list[Any]:
    """`weight` x the items: whole copies, then a random sample for the fraction."""
    if weight < 0:
        raise ValueError(f"a sampling weight must be >= 0, got {weight}")
    whole, frac = int(weight), weight - int(weight)
    out = list(items) * whole
    extra = round(frac * len(items))
    if extra:
        out.extend(rng.sample(items, extra))
    return out


def mix(
    sources: dict[str, tuple[list[Any], SourceCounts]], seed: int
) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """One epoch's examples drawn from every source by weight, and the counts per source.

    The draw is seeded, so a run (and its resumption) sees the same mixture.
    """
    rng = random.Random(seed)
    out: list[Any] = []
    report = {}
    for name, (items, counts) in sources.items():
        drawn = draw(items, counts.weight, rng)
        counts.drawn = len(drawn)
        out.extend(drawn)
        report[name] = counts.as_dict()
    return out, report


def mixed_examples(
    release_examples: list[ChatExample] | None,
    release_counts: SourceCounts | None,
    data: DataConfig,
    seed: int,
) -> tuple[list[ChatExample], dict[str, dict[str, Any]]]:
    """The release's examples (if any) and every `data.extra` source, mixed by weight."""
    sources: dict[str, tuple[list[Any], SourceCounts]] = {}
    if release_examples is not None:
        counts = release_counts or SourceCounts(records=len(release_examples))
        counts.examples = len(release_examples)
        counts.weight = float(data.release_weight)
        sources[RELEASE_SOURCE] = (release_examples, counts)
    for extra in data.extra:
        name = source_name(extra)
        if name in sources:
            raise ValueError(f"data.extra: two sources are named {name!r}; give one a name")
        sources[name] = read_llava_json(extra)
    examples, report = mix(sources, seed)
    for name, row in report.items():
        if row["skipped"]:
            log.warning("source %s: skipped %s", name, row["skipped"])
    return examples, report


def seen_per_source(examples: list[ChatExample], indices: list[int]) -> dict[str, int]:
    """How many of the trained-on examples came from each source."""
    seen = Counter(examples[i].meta.get("source", RELEASE_SOURCE) for i in indices)
    return dict(sorted(seen.items()))
