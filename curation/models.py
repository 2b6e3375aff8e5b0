"""Domain model (see shared/DESIGN.md). Rows are written only by ``curation.services``."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from curation import limits
from curation.extract import model as extracted

SHA256_LEN = 64
PROPOSED = models.Q(status="proposed")  # pairs still waiting for review (partial indexes)


class Modality(models.TextChoices):
    CLINICAL = "clinical"
    DERMOSCOPIC = "dermoscopic"
    PATHOLOGICAL = "pathological"
    OTHER = "other"
    MIXED = "mixed"  # figure level only: panels of different modalities; a pair never is


class Sex(models.TextChoices):
    """The extractor's values (``curation.extract.model``); unknown is NULL, never ""."""

    FEMALE = extracted.FEMALE
    MALE = extracted.MALE


class Work(models.Model):
    """The book behind its editions: editions of one work are one split group (book rule)."""

    title = models.CharField(max_length=limits.TITLE)
    authors = models.CharField(max_length=limits.AUTHORS, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title", "id"]

    def __str__(self) -> str:
        return self.title


class Textbook(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    title = models.CharField(max_length=limits.TITLE)
    edition = models.CharField(max_length=limits.EDITION, blank=True)
    authors = models.CharField(max_length=limits.AUTHORS, blank=True)
    licence_note = models.TextField(max_length=limits.LICENCE_NOTE, blank=True)
    work = models.ForeignKey(
        Work, null=True, blank=True, on_delete=models.SET_NULL, related_name="editions"
    )
    sha256 = models.CharField(max_length=SHA256_LEN, unique=True)
    file = models.CharField(max_length=300, help_text="storage path of the content-addressed PDF")
    original_filename = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField()
    page_count = models.PositiveIntegerField()

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    ingest_run = models.PositiveIntegerField(
        default=0, help_text="bumped on every (re-)ingest so late tasks of an old run are ignored"
    )
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    figures_found = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    ingest_started_at = models.DateTimeField(null=True, blank=True)
    ingest_finished_at = models.DateTimeField(null=True, blank=True)
    finalize_heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last report of the worker running the finalising task"
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class IngestChunk(models.Model):
    """One page range of one ingest run; the DB, not the broker, knows when a run is complete."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    textbook = models.ForeignKey(Textbook, on_delete=models.CASCADE, related_name="chunks")
    run = models.PositiveIntegerField()
    first_page = models.PositiveIntegerField()
    last_page = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    orphans = models.JSONField(default=list, blank=True)
    figures_found = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="last report of the worker running this chunk; none while no worker holds it",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["textbook", "run", "first_page"], name="uniq_chunk_per_run"
            )
        ]
        ordering = ["textbook", "run", "first_page"]

    def __str__(self) -> str:
        return f"{self.textbook_id} run {self.run} p{self.first_page}-{self.last_page}"


class Page(models.Model):
    textbook = models.ForeignKey(Textbook, on_delete=models.CASCADE, related_name="pages")
    number = models.PositiveIntegerField(help_text="1-based")
    width = models.FloatField()
    height = models.FloatField()
    text = models.TextField(blank=True)
    section = models.JSONField(default=list, blank=True)
    image = models.CharField(
        max_length=300, blank=True, help_text="storage path of the rendered page (for review)"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["textbook", "number"], name="uniq_page_number")
        ]
        ordering = ["textbook", "number"]

    def __str__(self) -> str:
        return f"{self.textbook_id} p{self.number}"


class Figure(models.Model):
    textbook = models.ForeignKey(Textbook, on_delete=models.CASCADE, related_name="figures")
    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="figures")
    label = models.CharField(max_length=50, help_text='"3.2", without the word "Fig."')
    bbox = models.JSONField(help_text="[x0, y0, x1, y1] in PDF points, caption excluded")
    caption = models.TextField(max_length=limits.CAPTION, blank=True)
    caption_bbox = models.JSONField(null=True, blank=True)
    image = models.CharField(max_length=300, help_text="storage path of the content-addressed crop")
    section = models.JSONField(default=list, blank=True)
    mentions = models.JSONField(default=list, blank=True)
    modality = models.CharField(max_length=20, choices=Modality.choices, default=Modality.OTHER)
    modality_confidence = models.FloatField(default=0.0)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Re-running a chunk updates these rows in place instead of adding new ones.
            models.UniqueConstraint(fields=["page", "label"], name="uniq_figure_label_on_page")
        ]
        ordering = ["textbook", "page__number", "id"]

    def __str__(self) -> str:
        return f"Fig. {self.label}"


class Panel(models.Model):
    figure = models.ForeignKey(Figure, on_delete=models.CASCADE, related_name="panels")
    index = models.PositiveSmallIntegerField()
    letter = models.CharField(max_length=4, blank=True)
    bbox = models.JSONField()
    subcaption = models.TextField(max_length=limits.SUBCAPTION, blank=True)
    # Indexed: the review page looks up the other pairs showing this very crop file.
    image = models.CharField(max_length=300, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["figure", "index"], name="uniq_panel_index")]
        ordering = ["figure", "index"]

    def __str__(self) -> str:
        return f"Fig. {self.figure.label}{self.letter}"


class CropImage(models.Model):
    """One distinct crop file (content addressed) and its near-duplicate descriptor.

    ``cluster`` is the sha256 of the first crop of its near-duplicate cluster, blank for a
    crop that is alone. Byte-identical crops are one file, hence one row: they need no
    cluster to be one picture. ``component`` is what lets a new book cluster incrementally
    (``curation.dedupe.update``); null marks a crop not clustered yet.
    """

    image = models.CharField(max_length=300, unique=True, help_text="storage path of the crop")
    sha256 = models.CharField(max_length=SHA256_LEN, db_index=True)
    phash = models.CharField(max_length=16, help_text="pHash of the whole crop (hex)")
    descriptor = models.BinaryField(help_text="curation.dedupe.Descriptor.to_bytes()")
    informative = models.BooleanField(default=True)
    cluster = models.CharField(max_length=SHA256_LEN, blank=True, db_index=True)
    component = models.CharField(
        max_length=SHA256_LEN, null=True, blank=True, default=None, db_index=True,
        help_text="sha256 of the first crop of its component (crops joined by verified "
        "candidate pairs or verdicts), blank when alone, null until clustered",
    )  # fmt: skip
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.image


class DuplicateVerdict(models.Model):
    """An expert's word on two crops: the same picture, or different (which splits them)."""

    class Verdict(models.TextChoices):
        SAME = "same", "same picture"
        DIFFERENT = "different"

    image_a = models.CharField(max_length=300, help_text="the smaller storage path of the two")
    image_b = models.CharField(max_length=300)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["image_a", "image_b"], name="verdict_pair_idx")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.verdict}: {self.image_a} / {self.image_b}"


class Flag(models.TextChoices):
    FACE = "face", "identifiable face"
    ANNOTATION_MARKS = "annotation_marks", "annotation marks (arrows, circles)"
    POOR_QUALITY = "poor_quality", "poor quality"
    NOT_DERMATOLOGY = "not_dermatology", "not dermatology"


class RejectReason(models.TextChoices):
    NOT_A_FIGURE = "not_a_figure", "not a clinical figure (diagram, table, chart)"
    WRONG_CAPTION = "wrong_caption", "caption belongs to another image"
    BAD_CROP = "bad_crop", "crop is wrong (cut off, several images)"
    IDENTIFIABLE = "identifiable", "identifiable patient"
    POOR_QUALITY = "poor_quality", "image quality too poor"
    DUPLICATE = "duplicate", "duplicate of another pair"
    OTHER = "other", "other (explain)"


class Pair(models.Model):
    """What an expert reviews and a release ships: a panel image and its text."""

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        ACCEPTED = "accepted"
        EDITED = "edited"
        REJECTED = "rejected"
        DISPUTED = "disputed"  # reviewers disagreed: waits in the adjudication queue

    panel = models.OneToOneField(Panel, on_delete=models.CASCADE, related_name="pair")
    textbook = models.ForeignKey(Textbook, on_delete=models.CASCADE, related_name="pairs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    text = models.TextField(max_length=limits.CAPTION, blank=True)
    modality = models.CharField(max_length=20, choices=Modality.choices, default=Modality.OTHER)
    diagnosis = models.CharField(max_length=limits.DIAGNOSIS, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    sex = models.CharField(max_length=10, choices=Sex.choices, null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    proposed = models.JSONField(
        default=dict, help_text="the machine's values, kept beside the expert's"
    )
    extract_confidence = models.FloatField(
        null=True, blank=True, help_text="the extractor's confidence in this figure/panel (0..1)"
    )
    extract_doubts = models.JSONField(
        default=list, blank=True, help_text="the extractor's reasons to doubt it (strings)"
    )
    reject_reason = models.CharField(max_length=20, choices=RejectReason.choices, blank=True)
    reject_note = models.TextField(max_length=limits.REJECT_NOTE, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="optimistic lock")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The review queue: oldest unreviewed item matching book/modality/status filters.
            models.Index(fields=["status", "id"], name="pair_queue_any_idx"),
            models.Index(fields=["status", "textbook", "modality", "id"], name="pair_queue_idx"),
            models.Index(fields=["status", "modality", "id"], name="pair_queue_mod_idx"),
            # Only the pairs still waiting: the oldest one is a single probe however many
            # reviewed pairs pile up at low ids (see migration 0008).
            models.Index(fields=["id"], name="pair_proposed_idx", condition=PROPOSED),
            models.Index(
                fields=["textbook", "id"], name="pair_proposed_book_idx", condition=PROPOSED
            ),
            models.Index(
                fields=["modality", "id"], name="pair_proposed_mod_idx", condition=PROPOSED
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sex__in=Sex.values) | models.Q(sex__isnull=True),
                name="pair_sex_female_male_or_null",
            )
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Pair {self.pk} ({self.status})"


class Review(models.Model):
    """One expert's decision on one item: the basis of throughput, timing and agreement."""

    class Decision(models.TextChoices):
        ACCEPTED = "accepted"
        EDITED = "edited"
        REJECTED = "rejected"

    item_type = models.CharField(max_length=20, default="pair")
    item_id = models.BigIntegerField()
    textbook = models.ForeignKey(Textbook, on_delete=models.CASCADE, related_name="reviews")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    modality = models.CharField(max_length=20, blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="the reviewer's field values")
    adjudication = models.BooleanField(default=False, help_text="a senior's final word")
    independent = models.BooleanField(
        default=True,
        help_text="made on an undecided pair, without another decision in view: only these "
        "count toward agreement",
    )
    seconds = models.FloatField(null=True, blank=True, help_text="claim to submit")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["item_type", "item_id"], name="review_item_idx"),
            models.Index(fields=["expert", "created_at"], name="review_expert_day_idx"),
            models.Index(fields=["textbook", "decision"], name="review_book_idx"),
            # The dashboard: reviews per expert per day read the period from this index
            # alone, and the median seconds per expert read the timed reviews in order.
            models.Index(fields=["created_at", "expert"], name="review_day_expert_idx"),
            models.Index(
                fields=["expert", "seconds"],
                name="review_timed_idx",
                condition=models.Q(seconds__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert_id} {self.decision} {self.item_type}:{self.item_id}"


class AgreementCount(models.Model):
    """A count that inter-rater agreement is computed from, kept up to date by the review
    service in the transaction of each decision, so the dashboard reads a few hundred rows
    instead of scanning every review (``curation/services/agreement_counts.py``).

    ``part`` says what the row counts:
      0, 1: Cohen's kappa tables (0 accept/reject, 1 modality): ``a`` < ``b`` are two experts,
            ``n`` the items they both rated with labels ``label_a`` / ``label_b``;
      2, 3: Fleiss' kappa sums (2 accept/reject, 3 modality): ``a`` the book, ``b`` a rater
            count r, over the book's items with at least r raters, each keeping its first r:
            ``n`` the ratings with ``label_a``, ``squares`` the sum over items of that count
            squared;
      4:    ``a`` the book, ``b`` a rater count, ``n`` the items with exactly that many raters.
    """

    part = models.PositiveSmallIntegerField()
    a = models.BigIntegerField()
    b = models.BigIntegerField()
    label_a = models.CharField(max_length=20, blank=True, default="")
    label_b = models.CharField(max_length=20, blank=True, default="")
    n = models.BigIntegerField(default=0)
    squares = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["part", "a", "b", "label_a", "label_b"], name="agreement_count_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.part}:{self.a}/{self.b} {self.label_a}/{self.label_b} = {self.n}"


class AgreementItem(models.Model):
    """What one reviewed item adds to ``AgreementCount`` now, so that a later decision on
    it (an overwrite, an undo) can take exactly that back before adding its new share."""

    item_type = models.CharField(max_length=20, default="pair")
    item_id = models.BigIntegerField()
    counts = models.JSONField(default=list, help_text="[[part, a, b, label_a, label_b, n, sq]]")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item_type", "item_id"], name="agreement_item_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.item_type}:{self.item_id}"


class ProjectSettings(models.Model):
    """Project-wide review settings: one row, changed by curators through a service."""

    reviews_per_item = models.PositiveSmallIntegerField(
        default=1, help_text="independent expert reviews each pair needs (2+: agreement)"
    )
    # What LLM drafting has spent so far, counted against LLM_BUDGET_TOKENS / LLM_BUDGET_COST.
    llm_tokens_spent = models.BigIntegerField(default=0)
    llm_cost_spent = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "project settings"

    def __str__(self) -> str:
        return f"{self.reviews_per_item} review(s) per item"

    @classmethod
    def current(cls) -> ProjectSettings:
        return cls.objects.get_or_create(pk=1)[0]


class VQAItem(models.Model):
    class Status(models.TextChoices):
        DRAFTED = "drafted"
        ACCEPTED = "accepted"
        EDITED = "edited"
        REJECTED = "rejected"

    class ImageInput(models.TextChoices):
        """What the drafting model was given: the text, the image too, or text as a fallback."""

        NONE = "", "text prompt"
        SENT = "sent", "image sent"
        FALLBACK = "fallback", "text only (image not usable)"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="vqa_items")
    question_type = models.CharField(max_length=limits.QUESTION_TYPE)
    question = models.TextField(max_length=limits.QUESTION)
    answer = models.TextField(max_length=limits.ANSWER)
    evidence = models.TextField(blank=True, help_text="the source text the answer rests on")
    generator = models.JSONField(default=dict, help_text="kind, model, prompt version, tokens")
    prompt_version = models.CharField(max_length=40, blank=True)
    draft = models.JSONField(default=dict, help_text="the original draft, never overwritten")
    grounded = models.BooleanField(default=True)
    unsupported_terms = models.JSONField(default=list, blank=True)
    # The answer describes what the drafting model saw in the image: only an expert can check
    # that, so such an item is never shipped or dropped on the text check alone.
    visual = models.BooleanField(default=False)
    visual_terms = models.JSONField(default=list, blank=True)

    image_input = models.CharField(
        max_length=10, choices=ImageInput.choices, default=ImageInput.NONE, blank=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFTED)
    reject_reason = models.CharField(max_length=30, blank=True)
    reject_note = models.TextField(max_length=limits.REJECT_NOTE, blank=True)
    version = models.PositiveIntegerField(default=1)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "id"], name="vqa_queue_idx"),
            # Drafting is idempotent per pair and prompt version (checked under the pair's lock).
            models.Index(fields=["pair", "prompt_version"], name="vqa_pair_prompt_idx"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"VQA {self.pk} ({self.question_type})"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("ReviewEvent rows are append-only")

    def delete(self):
        raise TypeError("ReviewEvent rows are append-only")


class ReviewEvent(models.Model):
    """Append-only audit row. A revert is a new event, never a rewrite."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    target_type = models.CharField(max_length=40)
    target_id = models.BigIntegerField()
    action = models.CharField(max_length=40)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["target_type", "target_id", "created_at"], name="event_target_idx"
            ),
            models.Index(fields=["actor", "action", "created_at"], name="event_actor_idx"),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("ReviewEvent rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("ReviewEvent rows are append-only")


class Claim(models.Model):
    """A reviewer's lease on one item; expired claims are ignored by the picker."""

    item_type = models.CharField(max_length=20)
    item_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    expires_at = models.DateTimeField(db_index=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item_type", "item_id"], name="uniq_claim_item")
        ]

    def __str__(self) -> str:
        return f"{self.item_type}:{self.item_id} by {self.user_id}"


class Release(models.Model):
    """A dataset release: a filter, frozen membership, and (once ready) immutable files."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    name = models.SlugField(max_length=100)
    version = models.CharField(max_length=30)
    description = models.TextField(max_length=limits.RELEASE_DESCRIPTION, blank=True)
    filter = models.JSONField(default=dict)
    split = models.JSONField(default=dict, blank=True, help_text="rule, seed and ratios")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    manifest_sha256 = models.CharField(max_length=SHA256_LEN, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Build state. ``build_token`` names the current attempt: a late task of an older attempt
    # finds a different token and does nothing.
    build_token = models.CharField(max_length=32, blank=True)
    phase = models.CharField(max_length=20, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    build_started_at = models.DateTimeField(null=True, blank=True)
    build_finished_at = models.DateTimeField(null=True, blank=True)
    path = models.CharField(
        max_length=300, blank=True, help_text="storage folder of the published release"
    )
    archive_sha256 = models.CharField(max_length=SHA256_LEN, blank=True)
    archive_size = models.BigIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="uniq_release_version")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ReleaseItem(models.Model):
    """Frozen membership of a release: which pair, in which split, with what content."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT)
    split = models.CharField(max_length=10)
    fingerprint = models.CharField(
        max_length=SHA256_LEN, blank=True, help_text="sha256 of the pair's lines as released"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "pair"], name="uniq_release_pair")
        ]

    def __str__(self) -> str:
        return f"{self.release_id}:{self.pair_id} ({self.split})"


class TrainingRun(models.Model):
    class Stage(models.TextChoices):
        ALIGN = "align"
        SFT = "sft"
        DPO = "dpo"
        EVAL = "eval"
        # MM-Skin's supervised classification: a probe on a benchmark's train CSV, scored on
        # its test CSV (`python -m ml train --stage sft_cls`, settings in config.sft_cls).
        SFT_CLS = "sft_cls", "SFT classification"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="training_runs")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict, blank=True)
    artefacts_uri = models.CharField(max_length=limits.ARTEFACTS_URI, blank=True)
    error = models.TextField(max_length=limits.TRAINING_ERROR, blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claimed_training_runs",
        help_text="the worker account that claimed the run: only it (or a curator) reports",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.stage} on {self.release}"


class WorkerHeartbeat(models.Model):
    """The last time a GPU worker (``python -m ml worker``) asked for work.

    One row per account and worker id (``host:pid`` by default), overwritten on every poll: it
    is a liveness signal for the release page ("no GPU worker connected"), not history.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="worker_heartbeats"
    )
    worker = models.CharField(max_length=200)
    hostname = models.CharField(max_length=255, blank=True)
    stages = models.JSONField(default=list, blank=True)
    # The worker's own polling interval: one that polls every 10 minutes is not gone after 5.
    poll_s = models.FloatField(default=30.0)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["user", "worker"], name="heartbeat_user_worker_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.worker} ({self.user_id})"


class Guideline(models.Model):
    """The project's definition of one modality, flag or reject reason, shown beside the review.

    Experts decide the same way only if they read the same definitions; curators edit them, and
    every edit is an audit event. A choice without a row shows the built-in default
    (``curation.guidelines``).
    """

    class Kind(models.TextChoices):
        MODALITY = "modality"
        FLAG = "flag"
        REJECT_REASON = "reject_reason", "reject reason"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    code = models.CharField(max_length=40)
    text = models.TextField(max_length=limits.GUIDELINE)
    version = models.PositiveIntegerField(default=1, help_text="optimistic lock")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "code"], name="guideline_kind_code_unique")
        ]
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


class ModalityClassifier(models.Model):
    """One version of the pixel modality classifier (``curation.extract.modality``): the
    shipped one, or one retrained from expert decisions. Exactly one is promoted: the one
    extraction suggests with. Its parameters are the model's JSON, so every worker loads it
    from the database and nothing is a pickle."""

    class Status(models.TextChoices):
        PROMOTED = "promoted"  # in use
        RETIRED = "retired"  # was in use, replaced by a better one
        REJECTED = "rejected"  # trained, not better than the one in use on the held-out slice

    version = models.CharField(max_length=40, unique=True)
    params = models.JSONField(help_text="ModalityModel.to_dict()")
    status = models.CharField(max_length=10, choices=Status.choices)
    shipped = models.BooleanField(default=False, help_text="the model in the package")
    trained_examples = models.PositiveIntegerField(default=0, help_text="expert examples used")
    heldout_examples = models.PositiveIntegerField(default=0)
    heldout_accuracy = models.FloatField(null=True, blank=True)
    incumbent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="challengers"
    )
    incumbent_accuracy = models.FloatField(
        null=True, blank=True, help_text="the model in use, on the same held-out slice"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="promoted"),
                name="one_promoted_modality_classifier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.status})"
