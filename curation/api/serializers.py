from __future__ import annotations

from rest_framework import serializers

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
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    edition = serializers.CharField(required=False, allow_blank=True, max_length=100)
    authors = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    licence_note = serializers.CharField(required=False, allow_blank=True, max_length=5000)


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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class TrainingRunUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices, required=False)
    progress = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    metrics = serializers.DictField(required=False)
    artefacts_uri = serializers.CharField(required=False, allow_blank=True, max_length=500)
    error = serializers.CharField(required=False, allow_blank=True)


class ReviewEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    actor = serializers.CharField(source="actor.username", default=None)
    action = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ClaimNextSerializer(serializers.Serializer):
    textbook = serializers.IntegerField(required=False, allow_null=True)
    modality = serializers.ChoiceField(
        choices=["clinical", "dermoscopic", "pathological", "other"], required=False
    )


class PairChangesSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True)
    modality = serializers.CharField(required=False)
    diagnosis = serializers.CharField(required=False, allow_blank=True)
    age = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=120)
    sex = serializers.ChoiceField(
        choices=["", *Sex.values], required=False, allow_null=True, help_text='null or "": unknown'
    )
    flags = serializers.ListField(child=serializers.CharField(), required=False)


class PairReviewSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=["accept", "reject"])
    changes = PairChangesSerializer(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    redecide = serializers.BooleanField(
        required=False,
        default=False,
        help_text="replace the decision already made on the pair (else 409 names who made it)",
    )


class PairRevertSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    event = serializers.IntegerField(min_value=1)


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
            "status",
            "reject_reason",
            "reject_note",
            "version",
            "reviewed_at",
        ]
        read_only_fields = fields


class VQAItemCreateSerializer(serializers.Serializer):
    pair = serializers.IntegerField()
    question_type = serializers.CharField(max_length=40)
    question = serializers.CharField()
    answer = serializers.CharField()


class VQAReviewSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=["accept", "reject"])
    question = serializers.CharField(required=False)
    answer = serializers.CharField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")


class TrainingRunClaimSerializer(serializers.Serializer):
    worker = serializers.CharField(max_length=200)


class DraftRequestSerializer(serializers.Serializer):
    pairs = serializers.ListField(child=serializers.IntegerField(), max_length=10000)
