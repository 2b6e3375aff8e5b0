from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from curation.api import panels, releases, views, vqa


class PublicSchemaView(SpectacularAPIView):
    """The OpenAPI schema is public: it documents the API, it exposes no data."""


class PublicDocsView(SpectacularSwaggerSplitView):
    """The split view serves Swagger UI's start-up code as a script file of its own (``?script``),
    so the docs page runs under the same Content-Security-Policy as every other page."""

    template_name = "api/swagger_ui.html"


router = DefaultRouter()
router.include_root_view = False
router.register("textbooks", views.TextbookViewSet, basename="textbook")
router.register("figures", views.FigureViewSet, basename="figure")
router.register("figures", panels.FigurePanelViewSet, basename="figure-panels")
router.register("pairs", views.PairViewSet, basename="pair")
router.register("vqa-items", vqa.VQAItemViewSet, basename="vqaitem")
router.register("releases", releases.ReleaseViewSet, basename="release")
router.register("training-runs", releases.TrainingRunViewSet, basename="trainingrun")

urlpatterns = [
    path(
        "releases/<id:pk>/files/<path:path>",
        releases.ReleaseFileView.as_view(),
        name="release-file",
    ),
    path("", include(router.urls)),
    path("dashboard/", views.DashboardView.as_view(), name="api-dashboard"),
    path("review-settings/", views.ReviewSettingsView.as_view(), name="api-review-settings"),
    path("schema/", PublicSchemaView.as_view(), name="api-schema"),
    path("docs/", PublicDocsView.as_view(url_name="api-schema"), name="api-docs"),
]
