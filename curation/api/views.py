"""REST API. Thin: parse, call a service or selector, serialise."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from curation.api import serializers as s
from curation.api.base import RoleScopedViewSet
from curation.models import Release, TrainingRun
from curation.selectors import textbooks as select
from curation.services import textbooks as textbook_service
from curation.services import training as training_service
from curation.services.errors import UploadRejected
from skinplatform.accounts.roles import ADMIN, CURATOR, EXPERT, ML_WORKER

STAFF = frozenset({CURATOR, ADMIN})
READERS = frozenset({CURATOR, EXPERT, ADMIN})


class TextbookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.TextbookSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["status"]
    action_roles = {"list": READERS, "retrieve": READERS, "create": STAFF, "reingest": STAFF}

    def get_queryset(self):
        return select.textbooks()

    @extend_schema(request=s.TextbookUploadSerializer, responses={201: s.TextbookSerializer})
    def create(self, request):
        """Upload a PDF (multipart ``file``). The same bytes again return the existing book."""
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.UPLOAD_MAX_BYTES + 1024 * 1024:
            raise UploadRejected(
                "too_large",
                f"The file is larger than the upload limit of "
                f"{settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB.",
                status=413,
            )
        form = s.TextbookUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        result = textbook_service.import_textbook(
            upload,
            filename=upload.name,
            user=request.user,
            metadata=textbook_service.BookMetadata(
                title=form.validated_data.get("title", ""),
                edition=form.validated_data.get("edition", ""),
                authors=form.validated_data.get("authors", ""),
                licence_note=form.validated_data.get("licence_note", ""),
            ),
        )
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(s.TextbookSerializer(result.textbook).data, status=code)

    @extend_schema(request=s.ReingestSerializer, responses={202: s.TextbookSerializer})
    @action(detail=True, methods=["post"])
    def reingest(self, request, pk=None):
        """Re-run extraction; expert decisions already made are kept."""
        form = s.ReingestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        self.get_object()
        book = textbook_service.start_ingest(
            int(pk), request.user, force=form.validated_data["force"]
        )
        return Response(s.TextbookSerializer(book).data, status=status.HTTP_202_ACCEPTED)


class FigureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.FigureSerializer
    filterset_fields = ["textbook", "modality", "label"]
    action_roles = {"*": READERS}

    def get_queryset(self):
        return select.figures_of()


class PairViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.PairSerializer
    filterset_fields = ["textbook", "status", "modality"]
    action_roles = {"*": READERS}

    def get_queryset(self):
        return select.pairs()


class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.ReleaseSerializer
    action_roles = {"*": frozenset({CURATOR, ADMIN, ML_WORKER})}

    def get_queryset(self):
        return Release.objects.all()


class TrainingRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, RoleScopedViewSet
):
    serializer_class = s.TrainingRunSerializer
    filterset_fields = ["release", "stage", "status"]
    action_roles = {"*": frozenset({CURATOR, ADMIN, ML_WORKER})}

    def get_queryset(self):
        return TrainingRun.objects.select_related("release")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = training_service.create_training_run(
            data["release"], data["stage"], data.get("config", {}), self.request.user
        )

    @extend_schema(request=s.TrainingRunUpdateSerializer, responses=s.TrainingRunSerializer)
    def partial_update(self, request, pk=None):
        """A worker's progress report: status, progress, metrics (merged), artefacts."""
        self.get_object()
        form = s.TrainingRunUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run = training_service.report_training_run(int(pk), request.user, form.validated_data)
        return Response(s.TrainingRunSerializer(run).data)
