"""The classifier file, its calibration and its `unknown` answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curation.extract.modality import features as feats
from curation.extract.modality import model as mm
from curation.extract.modality import train
from curation.samplebook import images


def constant(probs: dict[str, float], threshold: float = 0.5) -> mm.ModalityModel:
    """A real model whose weights are zero: it answers ``probs`` for every picture."""
    n = len(feats.NAMES)
    return mm.ModalityModel(
        version="const",
        classes=list(probs),
        mean=np.zeros(n),
        scale=np.ones(n),
        coef=np.zeros((len(probs), n)),
        intercept=np.log(np.asarray(list(probs.values()))),
        threshold=threshold,
    )


def test_shipped_model_loads_and_knows_the_drawn_pictures():
    m = mm.shipped()
    assert m.version and m.classes == train.CLASSES and len(m.dumps()) < 50_000
    rng = np.random.default_rng(11)
    for cls in ("clinical", "dermoscopic", "pathological"):
        p = m.predict(images.draw(cls, rng, 400, 300))
        assert p.best == cls, (cls, p.probabilities)


def test_below_the_threshold_the_answer_is_unknown():
    torn = {"clinical": 0.4, "dermoscopic": 0.35, "pathological": 0.15, "other": 0.1}
    img = images.draw("clinical", np.random.default_rng(0), 200, 150)
    p = constant(torn, threshold=0.5).predict(img)
    assert p.label == mm.UNKNOWN and p.best == "clinical"
    assert p.probability == pytest.approx(0.4)
    assert constant(torn, threshold=0.3).predict(img).label == "clinical"


def test_round_trip_and_refusals():
    m = constant({"clinical": 0.7, "other": 0.3})
    again = mm.ModalityModel.loads(m.dumps())
    assert np.allclose(again.proba(np.zeros(len(feats.NAMES))), [[0.7, 0.3]])
    d = m.to_dict()
    with pytest.raises(mm.ModelFormatError, match="other features"):
        mm.ModalityModel.from_dict({**d, "feature_names": ["x"]})
    with pytest.raises(mm.ModelFormatError, match="shapes"):
        mm.ModalityModel.from_dict({**d, "coef": [[0.0]]})
    with pytest.raises(mm.ModelFormatError, match="range"):
        mm.ModalityModel.from_dict({**d, "temperature": 0})
    with pytest.raises(mm.ModelFormatError, match="not JSON"):
        mm.ModalityModel.loads("{")
    with pytest.raises(mm.ModelFormatError, match="lacks"):
        mm.ModalityModel.loads(json.dumps({"format": d["format"], "feature_names": feats.NAMES}))


def test_temperature_softens_overconfident_scores():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    # scores say 99.9 % but are right only 75 % of the time
    right = rng.random(400) < 0.75
    said = np.where(right, y, 1 - y)
    logits = np.zeros((400, 2))
    logits[np.arange(400), said] = 7.0
    t = train.temperature(logits, y)
    assert t > 3
    p = np.exp(logits / t) / np.exp(logits / t).sum(axis=1, keepdims=True)
    assert p.max(axis=1).mean() == pytest.approx(0.75, abs=0.03)


def test_score_reports_ece_and_unknown_as_wrong():
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.45, 0.55], [0.6, 0.4]])
    s = train.score(proba, ["a", "b", "b", "a"], ["a", "b"], threshold=0.58)
    assert s["per_class"]["a"]["accuracy"] == 1.0  # both named a, both above the threshold
    assert s["per_class"]["b"]["unknown"] == 0.5 and s["per_class"]["b"]["accuracy"] == 0.0
    assert s["coverage"] == 0.75
    # bins: 0.9 -> 1 of 2 right (gap .4), 0.55 -> right (gap .45), 0.6 -> right (gap .4)
    assert s["ece"] == pytest.approx((2 * 0.4 + 0.45 + 0.4) / 4, abs=1e-3)


def test_fit_learns_calibrated_weights_and_refuses_one_class():
    x, y, g = train.drawn_examples(6, seed=1)
    m = train.fit(x, y, g, classes=train.CLASSES)
    assert m.temperature > 0 and m.version
    assert np.mean([m.classes[k] for k in m.proba(x).argmax(axis=1)] == np.asarray(y)) > 0.9
    with pytest.raises(ValueError, match="two classes"):
        train.fit(x[:3], ["clinical"] * 3, ["a", "b", "c"])
    with pytest.raises(ValueError, match="labels outside"):
        train.fit(x[:2], ["clinical", "mixed"], ["a", "b"])


def test_base_features_match_the_feature_code():
    x, y, g = train.base_examples()
    assert x.shape == (len(y), len(feats.NAMES)) and len(g) == len(y)
    assert set(y) == set(train.CLASSES)
