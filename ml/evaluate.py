"""`python -m ml eval`: generate answers on a release's test split and score them offline.

Three kinds of items are scored, each overall and per modality:

- `vqa`: the split's VQA items (BLEU-1..4, ROUGE-L, token recall, yes/no accuracy);
- `modality_classification`: one zero-shot question per pair asking for the modality, one of
  the four the question names: clinical, dermoscopic, pathological, or other. `other` is
  matched as a whole word only (`match_modality`), since as a substring it hits "another",
  "others", ...; the three others by the stems SkinVL/MM-Skin used. A pair whose modality is
  none of the four is counted as `excluded` beside the scores, and `excluded_labels` names
  those gold labels, so the figures say what they cover;
- `diagnosis_classification`: one zero-shot question per pair with a diagnosis, asking for
  it; the label set is every distinct diagnosis of the split's pairs (see `diagnosis_labels`).

Classification answers are matched to a label by substring (`ml.metrics.match_label`, which
says why and where that goes wrong). Prompts come from `ml.chat.prompt_for_generation`, the
same template path training uses; the decoding parameters, the prompts and the label sets are
written next to the scores so numbers are never quoted without them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ml.chat import prompt_for_generation
from ml.collator import load_image
from ml.config import Config
from ml.loop import _to_device, save_json, setup_distributed
from ml.metrics import MATCHING_NAME, Prediction, evaluate, match_label, normalize_label
from ml.modeling import (
    PROJECTOR_FILE,
    load_base_model,
    load_processor,
    load_projector,
    model_family,
    torch_dtype,
)
from ml.release import Release
from ml.stages.common import effective_config

MODALITY_PROMPT = (
    "Is this a clinical photograph, a dermoscopic image, a histopathology image, or other?"
)
OTHER = "other"
MODALITY_LABELS = {
    "clinical": "clinical",
    "dermoscopic": "dermoscop",
    "pathological": "histo",
    OTHER: OTHER,
}
_OTHER_WORD = re.compile(r"(?<!\w)other(?!\w)")


def match_modality(text: str, labels: Sequence[str]) -> str | None:
    """The modality an answer names: the stems by substring (`match_label`), `other` as a
    whole word; the earliest mention wins, as in `match_label`."""
    hit = match_label(text, [label for label in labels if label != OTHER])
    low = normalize_label(text)
    other = _OTHER_WORD.search(low) if OTHER in labels else None
    if other and (hit is None or other.start() < low.find(normalize_label(hit))):
        return OTHER
    return hit


DIAGNOSIS_PROMPT = "What is the most likely diagnosis?"
MODALITY_TASK, DIAGNOSIS_TASK = "modality_classification", "diagnosis_classification"


def load_for_eval(cfg: Config, device: torch.device) -> tuple[Any, Any]:
    """Base model plus the trained adapter/projector in `train.init_from`, in eval mode."""
    trained = Path(cfg.train.init_from) if cfg.train.init_from else None
    proc_dir = trained / "processor" if trained and (trained / "processor").is_dir() else None
    processor = load_processor(proc_dir or cfg.model.path)
    model = load_base_model(cfg.model, device=device)
    if trained and (trained / PROJECTOR_FILE).is_file():
        load_projector(model, model_family(model), trained / PROJECTOR_FILE)
    if trained and (trained / "adapter").is_dir():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, trained / "adapter").to(device)
    model.eval()
    return model, processor


def diagnosis_labels(release: Release, split: str) -> list[str]:
    """The diagnosis label set: every distinct normalised diagnosis of the split's pairs.

    `pairs.jsonl` stores a pair's diagnosis as the reviewer left it (free text) or null when
    there is none; null and blank ones are not a class. Case and whitespace are normalised
    (`normalize_label`), so "Melanoma" and "melanoma " are one class; spelling variants and
    synonyms stay separate classes (a release-side vocabulary would be needed to merge them).
    """
    return sorted({d for p in release.pairs(split) if (d := normalize_label(p.diagnosis or ""))})


def eval_items(release: Release, split: str) -> list[dict[str, Any]]:
    """VQA items, plus one zero-shot modality and one diagnosis question per pair."""
    pairs = {p.id: p for p in release.pairs()}
    items = []
    for v in release.vqa(split):
        pair = pairs.get(v.pair_id)
        items.append(
            {
                "image": release.image_path(v.image),
                "question": v.question,
                "reference": v.answer,
                "modality": pair.modality if pair else None,
                "question_type": v.question_type,
                "label": None,
            }
        )
    for p in release.pairs(split):
        items.append(
            {
                "image": release.image_path(p.image),
                "question": MODALITY_PROMPT,
                "reference": p.modality,
                "modality": p.modality,
                "question_type": MODALITY_TASK,
                "label": MODALITY_LABELS.get(p.modality, p.modality),
            }
        )
    for p in release.pairs(split):
        diagnosis = normalize_label(p.diagnosis or "")
        if not diagnosis:
            continue
        items.append(
            {
                "image": release.image_path(p.image),
                "question": DIAGNOSIS_PROMPT,
                "reference": p.diagnosis,
                "modality": p.modality,
                "question_type": DIAGNOSIS_TASK,
                "label": diagnosis,
            }
        )
    return items


def classification_block(
    preds: list[Prediction], labels: list[str], prompt: str, cfg: Config, matcher=None
) -> dict[str, Any]:
    """Scores overall and per modality, with what they depend on recorded beside them."""
    known = {normalize_label(label) for label in labels}
    excluded = {p.label for p in preds if p.label and normalize_label(p.label) not in known}
    return {
        **evaluate(preds, labels=labels, matcher=matcher),
        "labels": list(labels),
        "excluded_labels": sorted(excluded),
        "prompt": prompt,
        "matching": MATCHING_NAME,
        "decoding": asdict(cfg.eval),
    }


@torch.no_grad()
def generate(model: Any, processor: Any, items: list[dict], cfg: Config, device) -> list[str]:
    """Greedy (by default) answers for `items`, batched with left padding."""
    dtype = torch_dtype(cfg.model.dtype)
    tok = processor.tokenizer
    answers: list[str] = []
    for start in range(0, len(items), cfg.eval.batch_size):
        chunk = items[start : start + cfg.eval.batch_size]
        prompts = [prompt_for_generation(processor, it["question"]) for it in chunk]
        images = [load_image(it["image"]) for it in chunk]
        batch = processor(
            text=prompts, images=images, return_tensors="pt", padding=True, padding_side="left"
        )
        batch = _to_device(dict(batch), device, dtype)
        out = model.generate(
            **batch,
            max_new_tokens=cfg.eval.max_new_tokens,
            do_sample=cfg.eval.do_sample,
            num_beams=cfg.eval.num_beams,
            pad_token_id=tok.pad_token_id,
        )
        new = out[:, batch["input_ids"].shape[1] :]
        answers.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
    return answers


def run_eval(cfg: Config) -> dict[str, Any]:
    """Evaluate and write `eval.json` and `predictions.jsonl` into `train.output_dir`."""
    dist = setup_distributed()
    cfg = effective_config(cfg, dist)
    if not cfg.data.release:
        raise ValueError("data.release must name a release folder")
    release = Release(cfg.data.release, verify=cfg.data.verify)
    items = eval_items(release, cfg.data.eval_split)
    if cfg.data.limit:
        items = items[: cfg.data.limit]
    model, processor = load_for_eval(cfg, dist.device)
    answers = generate(model, processor, items, cfg, dist.device)
    preds = [
        Prediction(
            reference=it["reference"],
            prediction=ans,
            modality=it["modality"],
            question_type=it["question_type"],
            label=it["label"],
        )
        for it, ans in zip(items, answers, strict=True)
    ]
    vqa = [p for p in preds if p.label is None]
    by_task = {
        task: [p for p in preds if p.question_type == task and p.label is not None]
        for task in (MODALITY_TASK, DIAGNOSIS_TASK)
    }
    scores = {
        "release": release.name,
        "split": cfg.data.eval_split,
        "model": cfg.model.path,
        "trained": cfg.train.init_from,
        "decoding": asdict(cfg.eval),
        "vqa": evaluate(vqa),
        MODALITY_TASK: classification_block(
            by_task[MODALITY_TASK],
            list(MODALITY_LABELS.values()),
            MODALITY_PROMPT,
            cfg,
            matcher=match_modality,
        ),
        DIAGNOSIS_TASK: classification_block(
            by_task[DIAGNOSIS_TASK],
            diagnosis_labels(release, cfg.data.eval_split),
            DIAGNOSIS_PROMPT,
            cfg,
        ),
    }
    candidates = {
        MODALITY_TASK: scores[MODALITY_TASK]["labels"],
        DIAGNOSIS_TASK: scores[DIAGNOSIS_TASK]["labels"],
    }
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "eval.json", scores)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for p in preds:
            row = asdict(p)
            if p.label is not None:
                match = match_modality if p.question_type == MODALITY_TASK else match_label
                row["matched"] = match(p.prediction, candidates.get(p.question_type, ()))
            fh.write(json.dumps(row) + "\n")
    return scores
