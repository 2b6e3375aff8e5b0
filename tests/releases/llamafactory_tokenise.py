"""Tokenise a release through LLaMA-Factory's own data pipeline; print what came out as JSON.

    python tests/releases/llamafactory_tokenise.py RELEASE WORKDIR

Run by ``test_consumers.py`` in a subprocess whose ``PYTHONPATH`` holds torchaudio (which
LLaMA-Factory's ``mm_plugin`` imports at module level; see that test's fixture for where it
comes from), so that torchaudio never enters the test process's ``sys.modules``.

What runs is what ``llamafactory-cli train`` runs for ``stage: sft`` and ``stage: dpo`` with
``template: llava``, ``dataset_dir: formats/sharegpt`` and ``media_dir`` set to the release
root, up to the first batch: ``get_template_and_fix_tokenizer``, then ``loader.get_dataset``
(the registry, loading, aligning, the supervised and pairwise processors with the llava
template and its multimodal plugin), then the collators that the sft and dpo workflows build.
A tokenizer trained here with ``tokenizers``, the tiny LLaVA processor of ``ml.tiny`` and a
tiny random LLaVA built in code stand for a checkpoint; the model takes one optimiser step
on each batch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests/releases/vendor/llamafactory"), str(ROOT)]


def main(release: Path, workdir: Path) -> dict:
    import torchaudio
    from llamafactory.data.collator import (
        PairwiseDataCollatorWithPadding,
        SFTDataCollatorWith4DAttentionMask,
    )
    from llamafactory.data.loader import get_dataset
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams.data_args import DataArguments
    from transformers import AutoModelForImageTextToText, Seq2SeqTrainingArguments

    from ml.tiny import tiny_model_config, tiny_processor, train_tokenizer

    texts = []
    for name in ("pairs.jsonl", "vqa.jsonl", "preferences.jsonl"):
        for line in (release / name).read_text("utf-8").splitlines():
            row = json.loads(line)
            texts += [row.get(k, "") for k in ("caption", "question", "answer", "chosen")]
    tokenizer = train_tokenizer(texts)
    processor = tiny_processor("llava", tokenizer)
    import torch
    import torchaudio.functional

    out: dict = {
        "torchaudio": torchaudio.__version__,
        # the one torchaudio call on LLaMA-Factory's audio path: pure torch, it works here
        "resampled": list(torchaudio.functional.resample(torch.zeros(1, 160), 16, 8).shape),
        "torchaudio_extension": torchaudio._extension._IS_TORCHAUDIO_EXT_AVAILABLE,
        "image_token_id": tokenizer.convert_tokens_to_ids("<image>"),
        # what transformers' LlavaProcessor itself expands one image into, to compare
        "image_seq_length": _processor_image_tokens(processor, release),
        "ignore_index": IGNORE_INDEX,
        "eos": tokenizer.eos_token,
        "datasets": {},
    }
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(tiny_model_config("llava", tokenizer))
    model_args = SimpleNamespace(cache_dir=str(workdir / "cache"), hf_hub_token=None)
    stages = (("sft", "mmskin_caption_train,mmskin_sft_train"), ("rm", "mmskin_dpo_train"))
    for stage, names in stages:
        data_args = DataArguments(
            template="llava", dataset=names, dataset_dir=str(release / "formats/sharegpt"),
            media_dir=str(release), cutoff_len=1024, overwrite_cache=True,
        )  # fmt: skip
        training_args = Seq2SeqTrainingArguments(
            output_dir=str(workdir / stage), report_to=[], use_cpu=True, seed=0
        )
        template = get_template_and_fix_tokenizer(tokenizer, data_args)
        dataset = get_dataset(
            template, model_args, data_args, training_args, stage, tokenizer, processor
        )["train_dataset"]
        rows = [dataset[i] for i in range(len(dataset))]
        kwargs = dict(template=template, processor=processor, tokenizer=tokenizer, model=None,
                      label_pad_token_id=IGNORE_INDEX)  # fmt: skip
        if stage == "sft":
            collator = SFTDataCollatorWith4DAttentionMask(pad_to_multiple_of=8, **kwargs)
            keys = ("input_ids", "labels")
        else:
            collator = PairwiseDataCollatorWithPadding(pad_to_multiple_of=8, **kwargs)
            keys = ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels")
        batch = collator([dict(r) for r in rows[:4]])
        out["datasets"][stage] = {
            "rows": [_report(r, keys, tokenizer) for r in rows],
            "batch": {k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")},
            "batch_supervised": int((batch["labels"] != IGNORE_INDEX).sum()),
            "loss": _train_step(model, batch),
        }
    return out


def _train_step(model, batch: dict) -> dict:
    """One optimiser step of a tiny random LLaVA on the collated batch: the batch is what
    the model takes (ids, mask, labels, pixel values), and the loss moves."""
    import torch

    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(2):
        loss = model(**batch).loss
        losses.append(float(loss))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return {"before": losses[0], "after": losses[1]}


def _processor_image_tokens(processor, release: Path) -> int:
    from PIL import Image

    image = next((release / "images").rglob("*.png"))
    with Image.open(image) as img:
        ids = processor(images=[img.convert("RGB")], text="<image>")["input_ids"][0]
    token = processor.tokenizer.convert_tokens_to_ids("<image>")
    return sum(1 for t in ids if t == token)


def _report(row: dict, keys: tuple[str, ...], tokenizer) -> dict:
    """The row's ids and images, and per labels column the text it supervises and the rest."""
    out = {k: row[k] for k in keys} | {"images": row["images"]}
    for k in keys:
        if k.endswith("labels"):
            out[f"{k}_text"] = tokenizer.decode(_supervised(row, k))
            out[f"{k}_prompt_text"] = tokenizer.decode(_prompt(row, k))
    return out


def _supervised(row: dict, labels_key: str) -> list[int]:
    return [t for t in row[labels_key] if t != -100]


def _prompt(row: dict, labels_key: str) -> list[int]:
    ids = row[labels_key.replace("labels", "input_ids")]
    return [t for t, label in zip(ids, row[labels_key], strict=True) if label == -100]


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
