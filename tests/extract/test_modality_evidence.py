"""Caption and pixels combined by evidence: a named modality wins, a weak cue only tips."""

from __future__ import annotations

import numpy as np

from curation.extract import annotate, imagecues
from curation.samplebook import images
from tests.extract.test_modality_model import constant

IMG = images.draw("clinical", np.random.default_rng(0), 200, 150)
SURE_DERMOSCOPIC = {"clinical": 0.04, "dermoscopic": 0.9, "pathological": 0.03, "other": 0.03}
TORN = {"clinical": 0.42, "dermoscopic": 0.40, "pathological": 0.1, "other": 0.08}


def test_a_caption_that_names_the_modality_wins_over_sure_pixels():
    mod, conf = annotate.modality_from_text("Psoriasis, H&E stain, x200.")
    assert mod == "pathological" and conf >= imagecues.STRONG_TEXT
    s = imagecues.suggest(IMG, mod, conf, model=constant(SURE_DERMOSCOPIC))
    assert s.modality == "pathological" and s.evidence == "text"
    assert s.confidence < conf  # the disagreeing pixels cost a little confidence
    agree = imagecues.suggest(IMG, "dermoscopic", 0.9, model=constant(SURE_DERMOSCOPIC))
    assert agree.modality == "dermoscopic" and agree.confidence > 0.9


def test_a_weak_cue_does_not_outvote_sure_pixels():
    mod, conf = annotate.modality_from_text("Lesion on the left forearm of a 30-year-old man.")
    assert mod == "clinical" and conf < imagecues.STRONG_TEXT
    s = imagecues.suggest(IMG, mod, conf, model=constant(SURE_DERMOSCOPIC))
    assert s.modality == "dermoscopic" and s.model_version == "const"


def test_a_weak_cue_tips_torn_pixels_and_silence_leaves_them_unknown():
    m = constant(TORN, threshold=0.5)
    alone = imagecues.suggest(IMG, None, 0.0, model=m)
    assert alone.modality == "unknown" and alone.best == "clinical"
    tipped = imagecues.suggest(IMG, "dermoscopic", 0.55, model=m)
    assert tipped.best == "dermoscopic"
    # a weaker cue counts for less, and none counts more than the cap
    assert 1 < imagecues.weak_ratio(0.55) < imagecues.weak_ratio(0.7) < imagecues.MAX_WEAK_RATIO
    assert imagecues.weak_ratio(0.95) == imagecues.MAX_WEAK_RATIO


def test_confidence_is_the_posterior_not_a_constant():
    a = imagecues.suggest(IMG, None, 0.0, model=constant(SURE_DERMOSCOPIC)).confidence
    b = imagecues.suggest(IMG, None, 0.0, model=constant(TORN, threshold=0.3)).confidence
    assert a == 0.9 and b == 0.42
