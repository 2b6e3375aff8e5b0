"""Panel fixes over the API: a figure's panel layout, and redraw / split / merge / sub-captions.

Routes hang under ``/api/figures/{id}/panels/``. Every write carries the versions of the pairs
it touches; a stale one gets 409 with the current versions.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from curation.api.base import RoleScopedViewSet, id_field, version_field
from curation.models import Figure
from curation.selectors.panels import figure_layout
from curation.services import panels as panel_service
from skinplatform.accounts.roles import REVIEWERS


def _box():
    return serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4)


class Versions(serializers.DictField):
    child = version_field()


class PanelRowSerializer(serializers.Serializer):
    pair = serializers.IntegerField(source="pair.pk", allow_null=True)
    version = serializers.IntegerField(source="pair.version", allow_null=True)
    status = serializers.CharField(source="pair.status", allow_null=True)
    panel = serializers.IntegerField(source="panel.pk")
    index = serializers.IntegerField(source="panel.index")
    letter = serializers.CharField(source="panel.letter")
    bbox = serializers.ListField(source="panel.bbox", child=serializers.FloatField())
    subcaption = serializers.CharField(source="panel.subcaption")
    image = serializers.CharField(source="panel.image")
    machine_bbox = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    render = serializers.CharField(help_text='"", "rendering" or "failed"')


class PanelLayoutSerializer(serializers.Serializer):
    figure = serializers.IntegerField(source="figure.pk")
    label = serializers.CharField(source="figure.label")
    figure_bbox = serializers.ListField(source="figure.bbox", child=serializers.FloatField())
    page = serializers.IntegerField(source="page.number")
    page_width = serializers.FloatField(source="page.width")
    page_height = serializers.FloatField(source="page.height")
    page_image = serializers.CharField(source="page.image")
    rendering = serializers.BooleanField()
    panels = PanelRowSerializer(source="rows", many=True)


class PanelAdjustSerializer(serializers.Serializer):
    boxes = serializers.DictField(child=_box(), help_text="pair id -> [x0, y0, x1, y1] (points)")
    versions = Versions()
    force = serializers.BooleanField(default=False)


class PanelSplitSerializer(serializers.Serializer):
    pair = id_field()
    version = version_field()
    boxes = serializers.ListField(child=_box(), min_length=2, help_text="the first stays")
    letters = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    subcaptions = serializers.ListField(
        child=serializers.CharField(allow_blank=True), required=False
    )
    force = serializers.BooleanField(default=False)


class PanelMergeSerializer(serializers.Serializer):
    pairs = serializers.ListField(child=id_field(), min_length=2)
    versions = Versions()
    force = serializers.BooleanField(default=False)


class PanelSubcaptionChangeSerializer(serializers.Serializer):
    letter = serializers.CharField(allow_blank=True, max_length=4, required=False)
    subcaption = serializers.CharField(allow_blank=True, required=False)


class PanelSubcaptionsSerializer(serializers.Serializer):
    changes = serializers.DictField(child=PanelSubcaptionChangeSerializer())
    versions = Versions()


class FigurePanelViewSet(RoleScopedViewSet):
    """A figure's panels, and the fixes an expert makes to them."""

    action_roles = {"*": REVIEWERS}
    serializer_class = PanelLayoutSerializer

    def get_queryset(self):
        return Figure.objects.all()

    def _layout(self, pk) -> Response:
        return Response(PanelLayoutSerializer(figure_layout(int(pk))).data)

    @extend_schema(responses=PanelLayoutSerializer)
    @action(detail=True, methods=["get"], url_path="panels")
    def panels(self, request, pk=None):
        """Panels with their pairs' versions, the machine's boxes, and re-rendering state."""
        self.get_object()
        return self._layout(pk)

    @extend_schema(request=PanelAdjustSerializer, responses=PanelLayoutSerializer)
    @action(detail=True, methods=["post"], url_path="panels/adjust")
    def adjust(self, request, pk=None):
        """Redraw panel boxes; their crops are re-rendered from the PDF in the background."""
        self.get_object()
        form = PanelAdjustSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        panel_service.adjust_panels(int(pk), request.user, **form.validated_data)
        return self._layout(pk)

    @extend_schema(request=PanelSplitSerializer, responses=PanelLayoutSerializer)
    @action(detail=True, methods=["post"], url_path="panels/split")
    def split(self, request, pk=None):
        """Split one panel: the first box stays with its pair, the others become new pairs."""
        self.get_object()
        form = PanelSplitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        panel_service.split_panel(
            int(pk), request.user, pair_id=data["pair"], boxes=data["boxes"],
            version=data["version"], letters=data.get("letters"),
            subcaptions=data.get("subcaptions"), force=data["force"],
        )  # fmt: skip
        return self._layout(pk)

    @extend_schema(request=PanelMergeSerializer, responses=PanelLayoutSerializer)
    @action(detail=True, methods=["post"], url_path="panels/merge")
    def merge(self, request, pk=None):
        """Merge panels into one spanning them; the others' proposed pairs are deleted."""
        self.get_object()
        form = PanelMergeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        panel_service.merge_panels(
            int(pk), request.user, pair_ids=data["pairs"], versions=data["versions"],
            force=data["force"],
        )  # fmt: skip
        return self._layout(pk)

    @extend_schema(request=PanelSubcaptionsSerializer, responses=PanelLayoutSerializer)
    @action(detail=True, methods=["post"], url_path="panels/subcaptions")
    def subcaptions(self, request, pk=None):
        """Reassign letters and sub-captions (a swap is one call with both panels)."""
        self.get_object()
        form = PanelSubcaptionsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        panel_service.set_subcaptions(int(pk), request.user, **form.validated_data)
        return self._layout(pk)
