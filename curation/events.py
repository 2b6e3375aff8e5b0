"""Every kind of audit event, named once. ``record_event`` refuses any other action, so a
typo or a new kind nobody declared fails at the first write, not in a report months later."""

from __future__ import annotations

from django.db import models


class EventAction(models.TextChoices):
    # the machine's proposal of a pair, and its re-proposal after a re-ingest
    PAIR_PROPOSED = "pair.proposed"
    PAIR_REPROPOSED = "pair.reproposed"
    # final decisions (``services.review.decision_event``)
    PAIR_ACCEPTED = "pair.accepted"
    PAIR_EDITED = "pair.edited"
    PAIR_REJECTED = "pair.rejected"
    PAIR_REVIEWED = "pair.reviewed"  # one blind review of several: the pair waits for the others
    PAIR_DISPUTED = "pair.disputed"  # the blind reviews disagree: the pair waits for a curator
    PAIR_OVERRIDDEN = "pair.overridden"  # a decision that replaced another person's decision
    PAIR_UNDONE = "pair.undone"  # an expert took back their own decision moments after
    PAIR_SKIPPED = "pair.skipped"
    PAIR_REVERTED = "pair.reverted"
    # panel fixes and the crops they render
    PAIR_PANEL_ADJUSTED = "pair.panel_adjusted"
    PAIR_PANEL_SPLIT = "pair.panel_split"
    PAIR_PANEL_MERGED = "pair.panel_merged"
    PAIR_PANEL_ADDED = "pair.panel_added"  # a panel drawn where extraction found none
    PAIR_SUBCAPTION_CHANGED = "pair.subcaption_changed"
    PAIR_CROP_RENDERED = "pair.crop_rendered"
    PAIR_CROP_FAILED = "pair.crop_failed"
    FIGURE_BBOX_GROWN = "figure.bbox_grown"
    FIGURE_CROP_RENDERED = "figure.crop_rendered"
    # questions
    VQA_DRAFTED = "vqa.drafted"
    VQA_ADDED = "vqa.added"
    VQA_ACCEPTED = "vqa.accepted"
    VQA_EDITED = "vqa.edited"
    VQA_REJECTED = "vqa.rejected"
    # books and their ingest runs
    TEXTBOOK_IMPORTED = "textbook.imported"
    TEXTBOOK_WORK_SET = "textbook.work_set"
    WORK_CREATED = "work.created"
    INGEST_STARTED = "ingest.started"
    INGEST_COMPLETED = "ingest.completed"
    INGEST_FAILED = "ingest.failed"
    INGEST_UNSENT = "ingest.unsent"
    INGEST_RESUMED = "ingest.resumed"
    DUPLICATE_VERDICT = "duplicate.verdict"
    DUPLICATES_RECLUSTERED = "duplicates.reclustered"
    # releases and training
    RELEASE_CREATED = "release.created"
    RELEASE_BUILT = "release.built"
    RELEASE_FAILED = "release.failed"
    RELEASE_REBUILD = "release.rebuild"
    TRAINING_CREATED = "training.created"
    TRAINING_REPORTED = "training.reported"
    TRAINING_CLAIMED = "training.claimed"
    TRAINING_CANCELLED = "training.cancelled"
    TRAINING_WORKER_SEEN = "training.worker_seen"
    # the modality classifier's versions (``services.modality``)
    MODALITY_MODEL_REGISTERED = "modality_model.registered"
    MODALITY_MODEL_RETRAIN_REQUESTED = "modality_model.retrain_requested"
    MODALITY_MODEL_PROMOTED = "modality_model.promoted"
    MODALITY_MODEL_REJECTED = "modality_model.rejected"
    MODALITY_MODEL_SKIPPED = "modality_model.skipped"
    MODALITY_MODEL_RETIRED_UNUSABLE = "modality_model.retired_unusable"  # other features
    # project settings and guidelines
    SETTINGS_CHANGED = "settings.changed"
    GUIDELINE_UPDATED = "guideline.updated"
