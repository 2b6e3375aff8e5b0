from django.urls import path

import curation.api.base  # noqa: F401  (registers the <id:...> converter)
from curation.views import (
    books,
    dashboard,
    duplicates,
    guidelines,
    panels,
    progress,
    releases,
    review,
    training,
    vqa,
)  # fmt: skip

urlpatterns = [
    path("", books.HomeView.as_view(), name="home"),
    path("books/", books.BookListView.as_view(), name="book-list"),
    path("books/<id:pk>/", books.BookDetailView.as_view(), name="book-detail"),
    path("books/<id:pk>/progress/", progress.BookProgressView.as_view(), name="book-progress"),
    path("books/<id:pk>/reingest/", books.BookReingestView.as_view(), name="book-reingest"),
    path("books/<id:pk>/work/", books.BookWorkView.as_view(), name="book-work"),
    path("files/<path:path>", books.StoredFileView.as_view(), name="stored-file"),
    path("review/next/", review.ReviewNextView.as_view(), name="review-next"),
    path("review/vqa/next/", vqa.VQANextView.as_view(), name="vqa-next"),
    path("review/vqa/pairs/<id:pk>/", vqa.VQAPairView.as_view(), name="vqa-pair"),
    path("review/vqa/pairs/<id:pk>/add/", vqa.VQAAddView.as_view(), name="vqa-add"),
    path("review/vqa/items/<id:pk>/", vqa.VQAItemReviewView.as_view(), name="vqa-item-review"),
    path("dashboard/", dashboard.DashboardView.as_view(), name="dashboard"),
    path("review/guidelines/", guidelines.GuidelinesView.as_view(), name="guidelines"),
    path("review/settings/", dashboard.SettingsView.as_view(), name="review-settings"),
    path(
        "dashboard/modality/retrain/",
        dashboard.ModalityRetrainView.as_view(),
        name="modality-retrain",
    ),
    path("review/pairs/<id:pk>/", review.PairReviewView.as_view(), name="review-pair"),
    path("review/pairs/<id:pk>/renew/", review.ClaimRenewView.as_view(), name="review-renew"),
    path("review/pairs/<id:pk>/revert/", review.PairRevertView.as_view(), name="review-revert"),
    path("review/pairs/<id:pk>/undo/", review.PairUndoView.as_view(), name="review-undo"),
    path(
        "review/pairs/<id:pk>/duplicates/",
        duplicates.DuplicateVerdictView.as_view(),
        name="duplicate-verdict",
    ),
    path("review/figures/<id:pk>/panels/", panels.PanelEditorView.as_view(), name="panel-editor"),
    path(
        "review/figures/<id:pk>/panels/gutter/",
        panels.PanelGutterView.as_view(),
        name="panel-gutter",
    ),
    path(
        "review/figures/<id:pk>/panels/status/",
        panels.PanelRenderStatusView.as_view(),
        name="panel-status",
    ),
    path("releases/", releases.ReleaseListView.as_view(), name="release-list"),
    path("releases/new/", releases.ReleaseNewView.as_view(), name="release-new"),
    path("releases/preview/", releases.ReleasePreviewView.as_view(), name="release-preview"),
    path("releases/<id:pk>/", releases.ReleaseDetailView.as_view(), name="release-detail"),
    path(
        "releases/<id:pk>/progress/",
        progress.ReleaseProgressView.as_view(),
        name="release-progress",
    ),
    path(
        "releases/<id:pk>/next-version/",
        releases.ReleaseNextVersionView.as_view(),
        name="release-next-version",
    ),
    path(
        "releases/<id:pk>/rebuild/", releases.ReleaseRebuildView.as_view(), name="release-rebuild"
    ),
    path("releases/<id:pk>/diff/", releases.ReleaseDiffView.as_view(), name="release-diff"),
    path("releases/<id:pk>/train/", releases.ReleaseTrainView.as_view(), name="release-train"),
    path(
        "releases/<id:pk>/runs/<id:run_id>/cancel/",
        releases.TrainingRunCancelView.as_view(),
        name="training-run-cancel",
    ),
    path(
        "releases/<id:pk>/runs/<id:run_id>/",
        training.TrainingRunDetailView.as_view(),
        name="training-run-detail",
    ),
    path("runs/compare/", training.TrainingRunCompareView.as_view(), name="training-run-compare"),
]
