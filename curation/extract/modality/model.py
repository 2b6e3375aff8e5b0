"""The modality classifier as data: a standardised multinomial logistic regression with a
temperature, stored as JSON (a few kB, no pickle, nothing downloaded at run time).

Inference is a dot product in NumPy, so the extractor needs scikit-learn only to train.
A probability below the model's threshold is answered ``unknown`` rather than a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from . import features as feats

UNKNOWN = "unknown"
SHIPPED = "model.json"


class ModelFormatError(ValueError):
    """The model file is not one this code can run: wrong features, shapes or values."""


@dataclass(frozen=True)
class Prediction:
    label: str  # a class, or UNKNOWN below the threshold
    probability: float  # calibrated probability of the most likely class
    best: str  # the most likely class, even when the answer is UNKNOWN
    probabilities: dict[str, float]


@dataclass
class ModalityModel:
    version: str
    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray
    temperature: float = 1.0
    threshold: float = 0.5
    feature_names: list[str] = field(default_factory=lambda: list(feats.NAMES))
    metrics: dict = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.scale
        return z @ self.coef.T + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities for rows of features."""
        s = self.logits(x) / self.temperature
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        return p / p.sum(axis=1, keepdims=True)

    def predict_features(self, x: np.ndarray) -> Prediction:
        p = self.proba(x)[0]
        k = int(p.argmax())
        best = self.classes[k]
        label = best if p[k] >= self.threshold else UNKNOWN
        probs = {c: round(float(v), 4) for c, v in zip(self.classes, p, strict=True)}
        return Prediction(label, float(p[k]), best, probs)

    def predict(self, image: bytes | Image.Image) -> Prediction:
        """The modality of a picture by its pixels alone."""
        return self.predict_features(feats.features(image))

    def to_dict(self) -> dict:
        return {
            "format": "mmskin-modality-logreg-1",
            "version": self.version,
            "classes": self.classes,
            "feature_names": self.feature_names,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "temperature": self.temperature,
            "threshold": self.threshold,
            "metrics": self.metrics,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=None, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> ModalityModel:
        """Check and load a stored model; a model made for other features is refused."""
        if d.get("format") != "mmskin-modality-logreg-1":
            raise ModelFormatError(f"unknown model format {d.get('format')!r}")
        if d.get("feature_names") != feats.NAMES:
            raise ModelFormatError("the model was trained on other features than these")
        n, k = len(feats.NAMES), len(d["classes"])
        m = cls(
            version=str(d["version"]),
            classes=list(d["classes"]),
            mean=np.asarray(d["mean"], np.float64),
            scale=np.asarray(d["scale"], np.float64),
            coef=np.asarray(d["coef"], np.float64),
            intercept=np.asarray(d["intercept"], np.float64),
            temperature=float(d.get("temperature", 1.0)),
            threshold=float(d.get("threshold", 0.5)),
            metrics=dict(d.get("metrics", {})),
        )
        shapes = [m.mean.shape, m.scale.shape, m.coef.shape, m.intercept.shape]
        if k < 2 or shapes != [(n,), (n,), (k, n), (k,)]:
            raise ModelFormatError(f"model arrays have the wrong shapes: {shapes}")
        if not (m.temperature > 0 and 0 <= m.threshold <= 1 and np.all(m.scale > 0)):
            raise ModelFormatError("temperature, threshold or scale out of range")
        if not all(np.all(np.isfinite(a)) for a in (m.mean, m.coef, m.intercept)):
            raise ModelFormatError("model holds non-finite numbers")
        return m

    @classmethod
    def loads(cls, text: str) -> ModalityModel:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelFormatError(f"model is not JSON: {e}") from e
        if not isinstance(d, dict):
            raise ModelFormatError("model is not a JSON object")
        try:
            return cls.from_dict(d)
        except (KeyError, TypeError) as e:
            raise ModelFormatError(f"model lacks or mistypes a field: {e}") from e


def shipped() -> ModalityModel:
    """The model that ships in the package."""
    text = resources.files(__package__).joinpath(SHIPPED).read_text("utf-8")
    return _shipped(text)


@lru_cache(maxsize=1)
def _shipped(text: str) -> ModalityModel:
    return ModalityModel.loads(text)


_active: ModalityModel | None = None


def use(model: ModalityModel | None) -> None:
    """Make ``model`` the one this process suggests with (None: back to the shipped one).

    The platform calls this with the promoted model before it extracts; the extractor itself
    never reads the database."""
    global _active
    _active = model


def active() -> ModalityModel:
    """The model this process suggests with."""
    return _active if _active is not None else shipped()
