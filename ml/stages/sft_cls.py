"""`train --stage sft_cls`: supervised classification on a benchmark, as MM-Skin reports it.

MM-Skin's `SFT_classification.py` does not fine-tune the language model: it encodes every
image with the model's vision tower and projector (`model.encode_images`), mean-pools the
image tokens, and fits a scikit-learn pipeline (`StandardScaler` then `LogisticRegression`,
`max_iter=1000`) on the train CSV, choosing `C` from `10**linspace(-5, 1, 10)` by 5-fold
stratified cross-validation on ROC-AUC (one-vs-rest); the pipeline is then refitted on the
train rows and scored on the test CSV. This stage does the same with our models:

- the features are the projector's output for each image (`get_image_features`, which LLaVA
  and Qwen2.5-VL both have), mean-pooled over its tokens, from the base model plus the
  adapter/projector of `train.init_from` (so SkinVL-MM/-Pub/-PubMM checkpoints compare);
- the folds drop to the smallest class's size when a class has fewer than `folds` rows;
- rows with several categories take the first (MM-Skin draws one at random);
- besides accuracy, macro-F1, per-class accuracy and the confusion matrix (as zero-shot
  eval), the test AUC (macro, one-vs-rest) is reported, as MM-Skin's `prob_metrics` does.

Outputs in `train.output_dir`: `sft_cls.json` (scores, chosen C, labels), `probe.joblib`
(the fitted pipeline) and `predictions.jsonl`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.benchmarks import (
    CLASSIFICATION,
    Benchmark,
    BenchmarkError,
    load_benchmark,
    normalise,
    parse_labels,
)
from ml.collator import load_image
from ml.config import Config
from ml.loop import LogFn, save_json, setup_distributed
from ml.modeling import is_peft
from ml.stages.common import print_log, seed_everything
from ml.vqa_metrics import classification_report


def _benchmarks(cfg: Config) -> tuple[Benchmark, Benchmark, list[str]]:
    s = cfg.sft_cls
    if not (s.train_csv and s.test_csv and s.images):
        raise BenchmarkError("sft_cls needs sft_cls.train_csv, sft_cls.test_csv and sft_cls.images")
    train = load_benchmark(s.train_csv, s.images, name=Path(s.train_csv).stem)
    test = load_benchmark(s.test_csv, s.images, name=Path(s.test_csv).stem)
    for b in (train, test):
        if b.kind != CLASSIFICATION:
            raise BenchmarkError(f"{b.csv} is a VQA CSV; sft_cls trains on a classification CSV")
    # A list (YAML, or `--set sft_cls.labels=a,b` split by ml.config); parse_labels also
    # refuses a label given twice.
    if s.labels:
        labels = parse_labels(s.labels)
        known = {normalise(label) for label in labels}
        every = {c for b in (train, test) for it in b.items for c in it.categories}
        outside = sorted(c for c in every if normalise(c) not in known)
        if outside:
            raise BenchmarkError(f"categories {outside[:10]} are not in sft_cls.labels")
    else:
        by_key: dict[str, str] = {}
        for b in (train, test):
            for label in b.labels:
                by_key.setdefault(normalise(label), label)
        labels = [by_key[k] for k in sorted(by_key)]
    return train, test, labels


def _gold(bench: Benchmark, labels: list[str]) -> list[str]:
    index = {normalise(label): label for label in labels}
    return [index[normalise(it.categories[0])] for it in bench.items]


@torch.no_grad()
def image_features(
    model: Any, processor: Any, paths: list[Path], batch_size: int, device, on_batch=None
) -> np.ndarray:
    """One vector per image: the projector's output tokens, mean-pooled (MM-Skin's features)."""
    base = model.get_base_model() if is_peft(model) else model
    dtype = next(base.parameters()).dtype
    out = []
    n_batches = (len(paths) + batch_size - 1) // batch_size
    for b, start in enumerate(range(0, len(paths), batch_size)):
        images = [load_image(p) for p in paths[start : start + batch_size]]
        enc = processor.image_processor(images=images, return_tensors="pt")
        kwargs = {"pixel_values": enc["pixel_values"].to(device, dtype)}
        if "image_grid_thw" in enc:
            kwargs["image_grid_thw"] = enc["image_grid_thw"].to(device)
        feats = base.get_image_features(**kwargs)
        per_image = getattr(feats, "pooler_output", feats)
        if isinstance(per_image, torch.Tensor) and per_image.dim() == 3:
            per_image = list(per_image)
        out.extend(f.float().mean(0).cpu().numpy() for f in per_image)
        if on_batch:
            on_batch(b + 1, n_batches)
    return np.stack(out)


def fit_probe(x: np.ndarray, y: list[str], cfg: Config) -> tuple[Any, dict[str, Any]]:
    """StandardScaler + LogisticRegression, C chosen by stratified CV (see module docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    s = cfg.sft_cls
    counts = {label: y.count(label) for label in set(y)}
    if len(counts) < 2:
        raise BenchmarkError(f"the train CSV has one class only ({sorted(counts)}); nothing to fit")
    folds = min(int(s.folds), min(counts.values()))
    pipe = Pipeline(
        [
            ("scaler", StandardScaler()),
            ("model", LogisticRegression(max_iter=1000, random_state=cfg.train.seed)),
        ]
    )
    raw_grid = s.c_grid.split(",") if isinstance(s.c_grid, str) else s.c_grid
    grid = [float(c) for c in raw_grid]
    chosen: dict[str, Any] = {"folds": folds, "c_grid": grid, "scoring": s.scoring}
    if folds >= 2 and len(grid) > 1:
        search = GridSearchCV(
            pipe,
            {"model__C": grid},
            cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.train.seed),
            scoring=s.scoring,
            refit=False,
            error_score=np.nan,
        ).fit(x, y)
        best_c = float(search.best_params_["model__C"])
        chosen["cv_score"] = float(search.best_score_)
    else:  # a class with one row: no fold can hold it out, so the grid cannot be searched
        best_c = grid[len(grid) // 2]
        chosen["note"] = "too few rows per class to cross-validate; the middle C was used"
    chosen["C"] = best_c
    pipe.set_params(model__C=best_c)
    return pipe.fit(x, y), chosen


def _auc(probe: Any, x: np.ndarray, gold: list[str]) -> float | None:
    from sklearn.metrics import roc_auc_score

    classes = list(probe.classes_)
    if len(set(gold)) < 2 or not set(gold) <= set(classes):
        return None
    proba = probe.predict_proba(x)
    if len(classes) == 2:
        return float(roc_auc_score([g == classes[1] for g in gold], proba[:, 1]))
    present = sorted(set(gold))
    if len(present) < len(classes):
        return None  # one-vs-rest AUC needs every class the probe knows among the test rows
    return float(roc_auc_score(gold, proba, multi_class="ovr", labels=classes))


def run(cfg: Config, on_log: LogFn | None = print_log) -> dict[str, Any]:
    """Fit the probe on the train CSV, score it on the test CSV; returns the summary."""
    import joblib

    from ml.evaluate import load_for_eval

    dist = setup_distributed()
    if dist.world > 1:
        raise BenchmarkError("sft_cls runs as one process (the probe is fitted on one machine)")
    train, test, labels = _benchmarks(cfg)
    seed_everything(cfg.train.seed)
    model, processor = load_for_eval(cfg, dist.device)
    bs = cfg.sft_cls.batch_size
    total = -(-len(train.items) // bs) - (-len(test.items) // bs)
    done = {"n": 0}

    def progress(_b: int, _n: int) -> None:
        done["n"] += 1
        if on_log:
            on_log({"step": done["n"], "total_steps": total, "stage": "sft_cls features"})

    x_train = image_features(
        model, processor, [train.image_path(it) for it in train.items], bs, dist.device, progress
    )
    x_test = image_features(
        model, processor, [test.image_path(it) for it in test.items], bs, dist.device, progress
    )
    y_train, y_test = _gold(train, labels), _gold(test, labels)
    probe, chosen = fit_probe(x_train, y_train, cfg)
    predicted = [str(p) for p in probe.predict(x_test)]
    report = classification_report(y_test, predicted, labels)
    report["auc"] = _auc(probe, x_test, y_test)
    out = Path(cfg.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = {
        "stage": "sft_cls",
        "train": train.describe(),
        "test": test.describe(),
        "labels": labels,
        "probe": {"features": "projector output, mean-pooled", **chosen},
        "model": cfg.model.path,
        "trained": cfg.train.init_from,
        "classification": report,
    }
    save_json(out / "sft_cls.json", scores)
    joblib.dump(probe, out / "probe.joblib")
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for it, g, p in zip(test.items, y_test, predicted, strict=True):
            row = {"row": it.row, "image": it.image, "gold": g, "predicted": p}
            fh.write(json.dumps(row) + "\n")
    return {
        "stage": "sft_cls",
        "benchmark": test.name,
        "train_rows": len(train.items),
        "test_rows": len(test.items),
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "balanced_accuracy": report["balanced_accuracy"],
        "auc": report["auc"],
        "C": chosen["C"],
    }
