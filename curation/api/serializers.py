from __future__ import annotations

from rest_framework import serializers

from curation import limits
from curation.api.base import id_field, version_field
from curation.models import Figure, Pair, Panel, Release, Sex, Textbook, TrainingRun, VQAItem


class TextbookSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Textbook
        fields = [
            "id",
            "title",
            "edition",
            "authors",
            "licence_note",
            "sha256",
            "original_filename",
            "size_bytes",
            "page_count",
            "status",
            "progress",
            "pages_done",
            "figures_found",
            "chunks_done",
            "chunks_total",
            "error",
            "ingest_run",
            "ingest_started_at",
            "ingest_finished_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_progress(self, book: Textbook) -> float:
        if book.status == Textbook.Status.DONE:
            return 1.0
        return round(book.pages_done / book.page_count, 4) if book.page_count else 0.0


class TextbookUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=limits.TITLE)
    edition = serializers.CharField(required=False, allow_blank=True, max_length=limits.EDITION)
    authors = serializers.CharField(required=False, allow_blank=True, max_length=limits.AUTHORS)
    licence_note = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.LICENCE_NOTE
    )


class ReingestSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)


class PanelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Panel
        fields = ["id", "index", "letter", "bbox", "subcaption", "image"]


class FigureSerializer(serializers.ModelSerializer):
    page = serializers.IntegerField(source="page.number")
    panels = PanelSerializer(many=True, read_only=True)

    class Meta:
        model = Figure
        fields = [
            "id",
            "textbook",
            "label",
            "page",
            "bbox",
            "caption",
            "caption_bbox",
            "image",
            "section",
            "mentions",
            "modality",
            "modality_confidence",
            "flags",
            "panels",
        ]


class PairSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pair
        fields = [
            "id",
            "textbook",
            "panel",
            "status",
            "text",
            "modality",
            "diagnosis",
            "age",
            "sex",
            "flags",
            "proposed",
            "version",
            "reviewed_at",
        ]


class ReleaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["id", "name", "version", "status", "filter", "counts", "manifest_sha256"]


class TrainingRunSerializer(serializers.ModelSerializer):
    claimed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "release",
            "stage",
            "config",
            "status",
            "progress",
            "metrics",
            "artefacts_uri",
            "error",
            "claimed_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "claimed_by", "created_at", "updated_at"]

    def validate_config(self, value):
        return _json_within(value, limits.TRAINING_CONFIG_BYTES)


def _json_within(value, limit: int):
    """A field-level 400 for a JSON value over ``limit`` bytes (the service checks it too)."""
    size = limits.json_size(value)
    if size > limit:
        raise serializers.ValidationError(
            f"This is {size:,} bytes as JSON; at most {limit:,} are allowed."
        )
    return value


class TrainingRunUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices, required=False)
    progress = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    metrics = serializers.DictField(required=False)
    artefacts_uri = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.ARTEFACTS_URI
    )
    error = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.TRAINING_ERROR
    )

    def validate_metrics(self, value):
        return _json_within(value, limits.TRAINING_METRICS_BYTES)


class ReviewEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    actor = serializers.CharField(source="actor.username", default=None)
    action = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ClaimNextSerializer(serializers.Serializer):
    textbook = id_field(required=False, allow_null=True)
    modality = serializers.ChoiceField(
        choices=["clinical", "dermoscopic", "pathological", "other"], required=False
    )


class PairChangesSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, max_length=limits.CAPTION)
    modality = serializers.CharField(required=False)
    diagnosis = serializers.CharField(required=False, allow_blank=True, max_length=limits.DIAGNOSIS)
    age = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=120)
    sex = serializers.ChoiceField(
        choices=["", *Sex.values], required=False, allow_null=True, help_text='null or "": unknown'
    )
    flags = serializers.ListField(child=serializers.CharField(), required=False)


class PairReviewSerializer(serializers.Serializer):
    version = version_field()
    action = serializers.ChoiceField(choices=["accept", "reject"])
    changes = PairChangesSerializer(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.REJECT_NOTE
    )
    redecide = serializers.BooleanField(
        required=False,
        default=False,
        help_text="replace the decision already made on the pair (else 409 names who made it)",
    )


class PairRevertSerializer(serializers.Serializer):
    version = version_field()
    event = id_field()


class ProjectSettingsSerializer(serializers.Serializer):
    reviews_per_item = serializers.IntegerField(min_value=1, max_value=5)


class VQAItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = VQAItem
        fields = [
            "id",
            "pair",
            "question_type",
            "question",
            "answer",
            "evidence",
            "generator",
            "prompt_version",
            "draft",
            "grounded",
            "unsupported_terms",
            "visual",
            "visual_terms",
            "image_input",
            "status",
            "reject_reason",
            "reject_note",
            "version",
            "reviewed_at",
        ]
        read_only_fields = fields


class VQAItemCreateSerializer(serializers.Serializer):
    pair = id_field()
    question_type = serializers.CharField(max_length=limits.QUESTION_TYPE)
    question = serializers.CharField(max_length=limits.QUESTION)
    answer = serializers.CharField(max_length=limits.ANSWER)


class VQAReviewSerializer(serializers.Serializer):
    version = version_field()
    action = serializers.ChoiceField(choices=["accept", "reject"])
    question = serializers.CharField(required=False, max_length=limits.QUESTION)
    answer = serializers.CharField(required=False, max_length=limits.ANSWER)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.REJECT_NOTE
    )


class TrainingRunClaimSerializer(serializers.Serializer):
    worker = serializers.CharField(max_length=limits.WORKER_NAME)


class DraftRequestSerializer(serializers.Serializer):
    pairs = serializers.ListField(child=id_field(), max_length=10000)
