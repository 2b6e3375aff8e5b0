"""Train, calibrate and evaluate the modality classifier.

``fit`` is shared by the command line (the real-image development set) and the platform's
retraining from expert decisions. Calibration is a temperature fitted on out-of-fold scores,
so the probabilities mean what they say on pictures the model did not see.

    python -m curation.extract.modality.devset --out var/modality-devset   # once
    python -m curation.extract.modality.train --cache var/modality-devset

It writes model.json, metrics.json and base_features.json beside this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from . import features as feats
from .model import UNKNOWN, ModalityModel

CLASSES = ["clinical", "dermoscopic", "pathological", "other"]
THRESHOLD = 0.5
BASE_FEATURES = "base_features.json"
C_REG = 0.5


def _fit_raw(x: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> ModalityModel:
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 1e-9, scaler.scale_, 1.0)
    z = (x - scaler.mean_) / scale
    clf = LogisticRegression(C=C_REG, max_iter=3000, class_weight="balanced")
    clf.fit(z, [classes.index(v) for v in y])
    coef = np.zeros((len(classes), x.shape[1]))
    intercept = np.full(len(classes), -30.0)  # a class absent from the data is never chosen
    for row, k in enumerate(clf.classes_):
        if len(clf.classes_) == 2:
            # sklearn keeps one row for two classes: logit of the second against the first
            coef[clf.classes_[1]] = clf.coef_[0] / 2
            coef[clf.classes_[0]] = -clf.coef_[0] / 2
            intercept[clf.classes_[1]] = clf.intercept_[0] / 2
            intercept[clf.classes_[0]] = -clf.intercept_[0] / 2
            break
        coef[k] = clf.coef_[row]
        intercept[k] = clf.intercept_[row]
    return ModalityModel(
        version="",
        classes=list(classes),
        mean=scaler.mean_.copy(),
        scale=scale,
        coef=coef,
        intercept=intercept,
    )


def temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of held-out scores."""

    def nll(t: float) -> float:
        s = logits / t
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y_idx)), y_idx].mean())

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def out_of_fold(
    x: np.ndarray, y: Sequence[str], groups: Sequence[str], classes: Sequence[str], folds: int = 5
) -> np.ndarray:
    """Logits of each row from a model trained without its group (file or source)."""
    n_groups = len(set(groups))
    k = max(2, min(folds, n_groups))
    out = np.zeros((len(y), len(classes)))
    y_arr = np.asarray(y)
    for tr, te in GroupKFold(n_splits=k).split(x, y_arr, groups):
        m = _fit_raw(x[tr], y_arr[tr], classes)
        out[te] = m.logits(x[te])
    return out


def fit(
    x: np.ndarray,
    y: Sequence[str],
    groups: Sequence[str],
    classes: Sequence[str] = CLASSES,
    threshold: float = THRESHOLD,
    version: str | None = None,
) -> ModalityModel:
    """A calibrated model: weights from all rows, temperature from out-of-fold scores."""
    if len(set(y)) < 2:
        raise ValueError("training needs examples of at least two classes")
    if any(v not in classes for v in y):
        raise ValueError(f"labels outside {list(classes)}: {sorted(set(y) - set(classes))}")
    x = np.asarray(x, np.float64)
    oof = out_of_fold(x, y, groups, classes)
    y_idx = np.asarray([list(classes).index(v) for v in y])
    t = temperature(oof, y_idx)
    m = _fit_raw(x, np.asarray(y), classes)
    m.temperature = t
    m.threshold = threshold
    digest = hashlib.sha256(m.dumps().encode()).hexdigest()[:10]
    m.version = version or f"{dt.datetime.now(dt.UTC):%Y%m%d}-{digest}"
    return m


def evaluate(
    model: ModalityModel, x: np.ndarray, y: Sequence[str], bins: int = 10
) -> dict[str, object]:
    """Accuracy per class (answers of ``unknown`` count as wrong), coverage, ECE and the
    reliability table of the top-class probability."""
    return score(model.proba(np.asarray(x, np.float64)), y, model.classes, model.threshold, bins)


def score(
    proba: np.ndarray, y: Sequence[str], classes: Sequence[str], threshold: float, bins: int = 10
) -> dict[str, object]:
    y = list(y)
    top = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    best = [classes[k] for k in top]
    said = [b if c >= threshold else UNKNOWN for b, c in zip(best, conf, strict=True)]
    per_class: dict[str, dict[str, float]] = {}
    for c in classes:
        idx = [i for i, v in enumerate(y) if v == c]
        if idx:
            per_class[c] = {
                "n": len(idx),
                "accuracy": round(sum(said[i] == c for i in idx) / len(idx), 3),
                "top1": round(sum(best[i] == c for i in idx) / len(idx), 3),
                "unknown": round(sum(said[i] == UNKNOWN for i in idx) / len(idx), 3),
            }
    correct = np.asarray([b == t for b, t in zip(best, y, strict=True)], float)
    table = []
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if m.any():
            gap = abs(conf[m].mean() - correct[m].mean())
            ece += m.mean() * gap
            table.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "n": int(m.sum()),
                    "confidence": round(float(conf[m].mean()), 3),
                    "accuracy": round(float(correct[m].mean()), 3),
                }
            )
    answered = [i for i, s in enumerate(said) if s != UNKNOWN]
    return {
        "n": len(y),
        "accuracy": round(float(np.mean([s == t for s, t in zip(said, y, strict=True)])), 3),
        "top1": round(float(correct.mean()), 3),
        "coverage": round(len(answered) / len(y), 3) if y else 0.0,
        "accuracy_answered": round(float(np.mean([said[i] == y[i] for i in answered])), 3)
        if answered
        else 0.0,
        "ece": round(float(ece), 4),
        "per_class": per_class,
        "reliability": table,
    }


def load_cache(cache: str | os.PathLike) -> tuple[np.ndarray, list, list[str], list[str]]:
    """Features, items, labels and groups (file of origin) of the cached development set."""
    from .devset import load

    items, rows = [], []
    for it, img in load(cache):
        items.append(it)
        rows.append(feats.features(img))
    return np.asarray(rows), items, [it.label for it in items], [it.origin for it in items]


def drawn_examples(per_class: int, seed: int = 7) -> tuple[np.ndarray, list[str], list[str]]:
    """Pictures drawn by the sample-book generator (the demo's books), some with burnt-in
    arrows: the model must keep knowing them, and they are never counted in the metrics."""
    from curation.samplebook import images

    rng = np.random.default_rng(seed)
    rows, labels, groups = [], [], []
    for cls in ("clinical", "dermoscopic", "pathological"):
        for i in range(per_class):
            w = int(rng.integers(240, 640))
            h = int(w * rng.uniform(0.6, 1.0))
            # a third of the clinical ones are the generator's stand-in faces
            face = cls == "clinical" and i % 3 == 1
            img = images.face(rng, w, h) if face else images.draw(cls, rng, w, h)
            if i % 3 == 0:
                img = images.burn_marks(img, rng)
            rows.append(feats.features(img))
            labels.append(cls)
            groups.append(f"samplebook:{cls}:{i}")
    return np.asarray(rows), labels, groups


def base_examples() -> tuple[np.ndarray, list[str], list[str]]:
    """The features the shipped model was trained on (committed beside it as numbers, not
    pictures): retraining from expert decisions starts from these."""
    text = resources.files(__package__).joinpath(BASE_FEATURES).read_text("utf-8")
    d = json.loads(text)
    if d["feature_names"] != feats.NAMES:
        raise ValueError("the committed training features were computed by other code")
    return np.asarray(d["x"], np.float64), list(d["labels"]), list(d["groups"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="train the modality classifier on the dev set")
    p.add_argument("--cache", default=os.environ.get("MMSKIN_DEVSET", "var/modality-devset"))
    here = Path(__file__).parent
    p.add_argument("--model-out", default=str(here / "model.json"))
    p.add_argument("--metrics-out", default=str(here / "metrics.json"))
    p.add_argument("--features-out", default=str(here / BASE_FEATURES))
    p.add_argument("--drawn", type=int, default=30, help="sample-book pictures per class")
    args = p.parse_args(argv)
    x, items, y, groups = load_cache(args.cache)
    dev = [i for i, it in enumerate(items) if it.split == "dev"]
    held = [i for i, it in enumerate(items) if it.split == "heldout"]
    xd, yd, gd = x[dev], [y[i] for i in dev], [groups[i] for i in dev]
    xs, ys, gs = drawn_examples(args.drawn) if args.drawn else (np.zeros((0, xd.shape[1])), [], [])
    x_train = np.vstack([xd, xs])
    y_train, g_train = yd + ys, gd + gs
    model = fit(x_train, y_train, g_train)
    # dev figures: out-of-fold by file of origin, calibrated with the final temperature
    oof = out_of_fold(x_train, y_train, g_train, CLASSES)[: len(dev)] / model.temperature
    oof = np.exp(oof - oof.max(axis=1, keepdims=True))
    oof /= oof.sum(axis=1, keepdims=True)
    metrics = {
        "trained_on": f"{len(dev)} dev pictures from "
        f"{len({items[i].source for i in dev})} repositories and {len(ys)} drawn ones",
        "dev_cross_validated": score(oof, yd, CLASSES, model.threshold),
        "heldout_sources": evaluate(model, x[held], [y[i] for i in held]),
        "heldout_repositories": sorted({items[i].source for i in held}),
    }
    model.metrics = {k: metrics[k]["per_class"] for k in ("dev_cross_validated", "heldout_sources")}
    Path(args.model_out).write_text(model.dumps() + "\n", "utf-8")
    base = {"feature_names": feats.NAMES, "labels": y_train, "groups": g_train}
    base["x"] = np.round(x_train, 5).tolist()
    Path(args.features_out).write_text(json.dumps(base, separators=(",", ":")) + "\n", "utf-8")
    Path(args.metrics_out).write_text(json.dumps(metrics, indent=1) + "\n", "utf-8")
    print(json.dumps({k: v for k, v in metrics.items() if k != "heldout_repositories"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
