"""The modality classifier learns from expert decisions: retraining promotes a new version only
when it beats the one in use on a held-out slice, every suggestion names the version that made
it, and the dashboard measures each version against the experts."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from curation.extract.modality import model as mm
from curation.models import ModalityClassifier, Pair, ReviewEvent
from curation.samplebook import images
from curation.selectors import modality as select
from curation.services import dispatch
from curation.services import ingest as ingest_service
from curation.services import modality as svc
from curation.services.storage import store_bytes
from tests.dispatching import record_sends
from tests.extract.test_modality_model import constant
from tests.factories import make_book, make_pairs

CLASSES = ("clinical", "dermoscopic", "pathological")


@pytest.fixture
def small_slices(settings):
    settings.MODALITY_HELDOUT_EVERY = 2  # every other figure is held out
    settings.MODALITY_RETRAIN_MIN_HELDOUT = 6


def _decided(book, expert, n_per_class: int, label_for=lambda cls: cls, seed=0):
    """Pairs with drawn crops, decided by an expert with ``label_for(true class)``."""
    rng = np.random.default_rng(seed)
    pairs = []
    for cls in CLASSES:
        for pair in make_pairs(book, n_per_class, modality="clinical"):
            img = images.draw(cls, rng, 320, 240)
            path = store_bytes(images.png_bytes(img), prefix="crops", ext="png")
            pair.panel.image = path
            pair.panel.save(update_fields=["image"])
            pair.modality = label_for(cls)
            pair.status = Pair.Status.EDITED
            pair.reviewed_by, pair.reviewed_at = expert, timezone.now()
            pair.save()
            pairs.append((pair, cls))
    return pairs


def _promote(model: mm.ModalityModel) -> ModalityClassifier:
    ModalityClassifier.objects.filter(status="promoted").update(status="retired")
    return ModalityClassifier.objects.create(
        version=model.version, params=model.to_dict(), status="promoted"
    )


def test_the_shipped_model_is_registered_once(db):
    row = svc.ensure_registered()
    assert row.shipped and row.status == "promoted" and row.version == mm.shipped().version
    assert svc.ensure_registered().pk == row.pk
    assert ReviewEvent.objects.filter(action=svc.REGISTERED).count() == 1


def test_a_better_candidate_is_promoted(db, make_user, small_slices):
    expert = make_user("ann", "expert")
    _decided(make_book("A", pages=40), expert, 8)
    bad = _promote(constant({"clinical": 0.1, "dermoscopic": 0.1, "pathological": 0.1,
                             "other": 0.7}))  # fmt: skip
    result = svc.retrain()
    assert result.outcome == "promoted", result
    assert result.candidate_accuracy > result.incumbent_accuracy == 0.0
    bad.refresh_from_db()
    new = ModalityClassifier.objects.get(status="promoted")
    assert bad.status == "retired" and new.version == result.version and new.incumbent == bad
    assert new.trained_examples == result.trained_examples > 0 and new.heldout_examples >= 6
    ev = ReviewEvent.objects.get(action=svc.PROMOTED)
    assert ev.target_id == new.pk and ev.after["incumbent"] == bad.version
    assert svc.active_model().version == new.version


def test_a_candidate_that_is_not_better_is_kept_out(db, make_user, small_slices):
    expert = make_user("ann", "expert")
    # Experts "decide" the training figures wrongly (dermoscopy labelled clinical and so on);
    # the held-out slice keeps the true labels, which the model in use gets all right.
    wrong = {"clinical": "pathological", "dermoscopic": "clinical", "pathological": "dermoscopic"}
    pairs = _decided(make_book("A", pages=40), expert, 8)
    incumbent = svc.ensure_registered()
    shipped = mm.shipped()
    for pair, cls in pairs:
        held = svc.in_heldout_slice(pair.panel.figure_id)
        x = shipped.predict(images.draw(cls, np.random.default_rng(pair.pk), 320, 240))
        pair.modality = cls if held else wrong[cls]
        pair.save(update_fields=["modality"])
        if held and x.label != cls:  # keep only held-out pictures the model in use knows
            pair.status = Pair.Status.REJECTED
            pair.save(update_fields=["status"])
    for pair, cls in pairs:
        img = images.draw(cls, np.random.default_rng(pair.pk), 320, 240)
        pair.panel.image = store_bytes(images.png_bytes(img), prefix="crops", ext="png")
        pair.panel.save(update_fields=["image"])
    result = svc.retrain()
    assert result.outcome == "rejected", result
    assert result.incumbent_accuracy == 1.0 >= result.candidate_accuracy
    incumbent.refresh_from_db()
    assert incumbent.status == "promoted"
    rejected = ModalityClassifier.objects.get(status="rejected")
    assert rejected.version == result.version and rejected.incumbent == incumbent
    assert ReviewEvent.objects.filter(action=svc.REJECTED, target_id=rejected.pk).exists()


def test_too_few_decisions_skip_the_retraining(db, make_user, small_slices):
    expert = make_user("ann", "expert")
    _decided(make_book("A", pages=10), expert, 1)
    result = svc.retrain()
    assert result.outcome == "skipped" and "held-out" in result.reason
    assert ModalityClassifier.objects.count() == 1  # only the registered shipped model
    assert ReviewEvent.objects.filter(action=svc.SKIPPED).exists()


def test_an_unreadable_crop_is_one_example_fewer(db, make_user, small_slices):
    expert = make_user("ann", "expert")
    pairs = _decided(make_book("A", pages=40), expert, 8)
    pairs[0][0].panel.image = "crops/missing.png"
    pairs[0][0].panel.save(update_fields=["image"])
    result = svc.retrain()
    assert result.trained_examples + result.heldout_examples == len(pairs) - 1


def test_suggestions_store_the_model_version(db):
    fig = _figure_info(modality="unknown", best="dermoscopic", version="v-test")
    values = ingest_service._pair_values(fig, 0)
    assert values["modality_model"] == "v-test"
    assert values["modality"] == "dermoscopic"  # a pair keeps its most likely class ...
    assert ingest_service.MODALITY_UNKNOWN in values["extract_doubts"]  # ... as a doubt
    sure = ingest_service._pair_values(_figure_info("clinical", "clinical", "v2"), 0)
    assert sure["modality"] == "clinical" and "modality_unknown" not in sure["extract_doubts"]
    assert ingest_service._figure_modality(fig) == "dermoscopic"


def _figure_info(modality: str, best: str, version: str):
    from curation.extract.model import FigureInfo, PanelInfo

    panel = PanelInfo(0, None, (0, 0, 10, 10), "", b"", modality, 0.4, [],
                      modality_model=version, modality_best=best)  # fmt: skip
    return FigureInfo(
        label="1.1", page=1, bbox=(0, 0, 10, 10), caption="Fig. 1.1 A lesion.",
        caption_bbox=None, image_png=b"", panels=[panel], modality=modality,
        modality_confidence=0.4, section=[], diagnosis="", age=None, sex=None,
    )  # fmt: skip


def test_accuracy_against_experts_per_model_and_day(db, make_user):
    expert = make_user("ann", "expert")
    book = make_book("A", pages=10)
    pairs = make_pairs(book, 4, modality="clinical")
    for i, pair in enumerate(pairs):
        pair.proposed = {**pair.proposed, "modality_model": "v1" if i < 3 else "v2"}
        pair.modality = "clinical" if i in (0, 1) else "dermoscopic"  # v1: 2 of 3 kept
        pair.status, pair.reviewed_by, pair.reviewed_at = "edited", expert, timezone.now()
        pair.save()
    rows = {r["model"]: r for r in select.accuracy_over_time()}
    assert (rows["v1"]["decided"], rows["v1"]["agreed"]) == (3, 2)
    assert rows["v1"]["accuracy"] == pytest.approx(0.667, abs=1e-3)
    assert (rows["v2"]["decided"], rows["v2"]["accuracy"]) == (1, 0.0)


def test_the_button_sends_the_task_by_name(db, make_user, client, monkeypatch,
                                           django_capture_on_commit_callbacks):  # fmt: skip
    sent = record_sends(monkeypatch, dispatch.MODALITY_RETRAIN_TASK)
    curator = make_user("cur", "curator")
    client.force_login(curator)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/dashboard/modality/retrain/")
    assert r.status_code == 302
    assert sent == [(curator.pk,)]
    assert ReviewEvent.objects.filter(action=svc.RETRAIN_REQUESTED, actor=curator).exists()
    expert = make_user("ann", "expert")
    client.force_login(expert)
    assert client.post("/dashboard/modality/retrain/").status_code == 403
    assert len(sent) == 1


def test_beat_runs_the_retraining_task(settings):
    from skinplatform.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["retrain-modality"]
    assert entry["task"] == "workers.maintenance.retrain_modality"
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_a_promoted_model_for_other_features_gives_way_to_the_shipped_one(db):
    stale = constant({"clinical": 0.5, "other": 0.5}).to_dict()
    stale["feature_names"] = ["an", "older", "feature", "set"]
    old = ModalityClassifier.objects.create(version="old-features", params=stale,
                                            status="promoted")  # fmt: skip
    assert svc.active_model().version == mm.shipped().version
    old.refresh_from_db()
    assert old.status == "retired"
    assert ModalityClassifier.objects.get(status="promoted").shipped
    assert ReviewEvent.objects.filter(action=svc.RETIRED_UNUSABLE, target_id=old.pk).exists()
