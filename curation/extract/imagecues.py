"""Modality from the pixels, and its combination with what the caption says.

The pixels go through the calibrated classifier of ``curation.extract.modality`` (stain
deconvolution, field shape, texture, skin and flat colour). Text and image are combined as
evidence, not by fixed weights:

- a caption that names the modality ("dermoscopy", "H&E", "photomicrograph", "chart") is
  strong evidence and wins;
- a weak cue (a body site after "on the") is a small likelihood ratio: it tips a picture the
  classifier is torn about, and cannot outvote one it is sure of;
- with no usable evidence above the model's threshold the answer is ``unknown``, which the
  platform shows to the expert as a doubt rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .modality import model as modality_model
from .modality.model import UNKNOWN, ModalityModel

STRONG_TEXT = 0.75  # caption confidence from which the caption names the modality outright
MAX_WEAK_RATIO = 3.0  # the most a weak cue may multiply its class's odds by


@dataclass(frozen=True)
class Suggestion:
    modality: str  # a class, or UNKNOWN
    confidence: float
    best: str  # the most likely class even when the answer is UNKNOWN
    model_version: str  # the pixel model that took part ("" when the pixels were not used)
    image_probabilities: dict[str, float]
    evidence: str  # "text", "image", "text+image" or "none": what decided


def guess(image: bytes | Image.Image, model: ModalityModel | None = None) -> tuple[str, float]:
    """Modality suggested by the pixels alone (``unknown`` below the threshold)."""
    p = (model or modality_model.active()).predict(image)
    return p.label, round(p.probability, 3)


def weak_ratio(text_conf: float) -> float:
    """Likelihood ratio of a weak caption cue: its confidence read as odds, capped."""
    c = min(max(text_conf, 0.0), 0.99)
    return min(MAX_WEAK_RATIO, max(1.0, c / (1 - c)))


def suggest(
    image: bytes | Image.Image,
    text_modality: str | None,
    text_conf: float,
    model: ModalityModel | None = None,
) -> Suggestion:
    """The modality of a panel from its caption cue and its pixels."""
    m = model or modality_model.active()
    pred = m.predict(image)
    probs = dict(pred.probabilities)
    if text_modality is not None and text_conf >= STRONG_TEXT:
        p_img = probs.get(text_modality, 0.0)
        # Two views that agree make it surer; pixels that disagree cost a little confidence.
        conf = (
            text_conf + (1 - text_conf) * p_img if p_img >= 0.5 else text_conf * (0.9 + 0.1 * p_img)
        )
        agree = pred.best == text_modality
        return Suggestion(
            text_modality,
            round(min(conf, 0.99), 3),
            text_modality,
            m.version,
            probs,
            "text+image" if agree else "text",
        )
    post = dict(probs)
    if text_modality in post:
        post[text_modality] *= weak_ratio(text_conf)
    total = sum(post.values()) or 1.0
    post = {c: v / total for c, v in post.items()}
    best = max(post, key=post.__getitem__)
    conf = post[best]
    label = best if conf >= m.threshold else UNKNOWN
    evidence = "image" if text_modality is None or text_modality not in probs else "text+image"
    return Suggestion(label, round(conf, 3), best, m.version, probs, evidence)


def combine(
    image: bytes | Image.Image, text_modality: str | None, text_conf: float
) -> tuple[str, float]:
    """``suggest`` as a (modality, confidence) pair."""
    s = suggest(image, text_modality, text_conf)
    return s.modality, s.confidence
