"""Admin for inspection. Edits of reviewed data belong in the review UI, which audits them."""

from django.contrib import admin

from curation import models


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Textbook)
class TextbookAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "status", "page_count", "figures_found", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "authors", "sha256"]


@admin.register(models.IngestChunk)
class IngestChunkAdmin(ReadOnlyAdmin):
    list_display = ["textbook", "run", "first_page", "last_page", "status"]
    list_filter = ["status"]


@admin.register(models.Page)
class PageAdmin(ReadOnlyAdmin):
    list_display = ["textbook", "number", "width", "height"]
    list_filter = ["textbook"]


@admin.register(models.Figure)
class FigureAdmin(ReadOnlyAdmin):
    list_display = ["textbook", "label", "page", "modality"]
    list_filter = ["modality", "textbook"]
    search_fields = ["label", "caption"]


@admin.register(models.Panel)
class PanelAdmin(ReadOnlyAdmin):
    list_display = ["figure", "index", "letter"]


@admin.register(models.Pair)
class PairAdmin(ReadOnlyAdmin):
    list_display = ["id", "textbook", "status", "modality", "diagnosis", "version"]
    list_filter = ["status", "modality", "textbook"]
    search_fields = ["text", "diagnosis"]


@admin.register(models.VQAItem)
class VQAItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "pair", "question_type", "status"]
    list_filter = ["status", "question_type"]


@admin.register(models.ReviewEvent)
class ReviewEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id"]
    list_filter = ["action", "target_type"]


@admin.register(models.Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["item_type", "item_id", "user", "expires_at"]


@admin.register(models.Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "status", "created_at"]


@admin.register(models.ReleaseItem)
class ReleaseItemAdmin(ReadOnlyAdmin):
    list_display = ["release", "pair", "split"]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["release", "stage", "status", "progress", "created_at"]


@admin.register(models.WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["worker", "user", "hostname", "last_seen", "first_seen"]


@admin.register(models.Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "expert", "item_type", "item_id", "decision", "seconds"]
    list_filter = ["decision", "item_type"]


@admin.register(models.ProjectSettings)
class ProjectSettingsAdmin(ReadOnlyAdmin):
    list_display = ["reviews_per_item", "updated_at"]


# Written only by their services (counters in the decision's transaction, verdicts and works
# with audit events, guidelines with a version check): the admin shows them, never edits them.
@admin.register(models.Work)
class WorkAdmin(ReadOnlyAdmin):
    list_display = ["title", "authors"]


@admin.register(models.CropImage)
class CropImageAdmin(ReadOnlyAdmin):
    list_display = ["pk"]


@admin.register(models.DuplicateVerdict)
class DuplicateVerdictAdmin(ReadOnlyAdmin):
    list_display = ["pk"]


@admin.register(models.AgreementCount)
class AgreementCountAdmin(ReadOnlyAdmin):
    list_display = ["pk"]


@admin.register(models.AgreementItem)
class AgreementItemAdmin(ReadOnlyAdmin):
    list_display = ["pk"]


@admin.register(models.Guideline)
class GuidelineAdmin(ReadOnlyAdmin):
    list_display = ["kind", "code", "version", "updated_by", "updated_at"]


@admin.register(models.ModalityClassifier)
class ModalityClassifierAdmin(ReadOnlyAdmin):
    list_display = ["version", "status", "shipped", "trained_examples"]
