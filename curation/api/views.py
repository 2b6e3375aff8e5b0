"""REST API. Thin: parse, call a service or selector, serialise."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from curation.api import parsers
from curation.api import serializers as s
from curation.api.base import PLAIN_LIST, RoleScopedAPIView, RoleScopedViewSet
from curation.models import ProjectSettings
from curation.selectors import dashboard as dashboard_select
from curation.selectors import review as review_select
from curation.selectors import textbooks as select
from curation.services import drafting as drafting_service
from curation.services import review as review_service
from curation.services import textbooks as textbook_service
from curation.services.errors import UploadRejected
from skinplatform.accounts.roles import REVIEWERS, STAFF


class TextbookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.TextbookSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
    filterset_fields = ["status"]
    action_roles = {"list": REVIEWERS, "retrieve": REVIEWERS, "create": STAFF, "reingest": STAFF}

    def get_queryset(self):
        return select.textbooks()

    @extend_schema(
        request=s.TextbookUploadSerializer,
        responses={201: s.TextbookSerializer, 200: s.TextbookSerializer, 202: s.TextbookSerializer},
    )
    def create(self, request):
        """Upload a PDF (multipart ``file``). The same bytes again return the existing book.

        201: stored and queued. 202: stored and queued, but the broker is down; ``detail``
        says so and the ingest starts by itself once the broker is back.
        """
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
        body = s.TextbookSerializer(result.textbook).data
        if result.waiting_for_broker:
            body["detail"] = textbook_service.BROKER_DOWN_MESSAGE
            return Response(body, status=status.HTTP_202_ACCEPTED)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(body, status=code)

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
    action_roles = {"*": REVIEWERS}

    def get_queryset(self):
        return select.figures_of()


class PairViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    """Pairs, and their review: claim the next one, decide with a version, see history."""

    serializer_class = s.PairSerializer
    filterset_fields = ["textbook", "status", "modality"]
    action_roles = {"*": REVIEWERS, "revert": STAFF, "draft": STAFF}

    def get_queryset(self):
        return select.pairs()

    @extend_schema(request=s.ClaimNextSerializer, responses={200: s.PairSerializer, 204: None})
    @action(detail=False, methods=["post"], url_path="claim-next")
    def claim_next(self, request):
        """Lease the oldest unreviewed pair matching the filters (204 when none is left)."""
        form = s.ClaimNextSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        pair = review_service.claim_next(
            request.user,
            review_service.QueueFilter(
                textbook_id=form.validated_data.get("textbook"),
                modality=form.validated_data.get("modality"),
            ),
        )
        if pair is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.PairSerializer(pair).data)

    @extend_schema(request=s.PairReviewSerializer, responses={200: s.PairSerializer})
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """Accept (with edits) or reject. A stale ``version`` gets 409 with the stored state; so
        does a decided pair unless ``redecide`` says to replace its decision."""
        form = s.PairReviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        pair = review_service.review_pair(
            int(pk),
            request.user,
            version=data["version"],
            action=data["action"],
            changes=data.get("changes") or {},
            reason=data["reason"],
            note=data["note"],
            redecide=data["redecide"],
        )
        return Response(s.PairSerializer(pair).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        review_service.skip_pair(int(pk), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def renew(self, request, pk=None):
        """Extend this expert's lease on the pair."""
        self.get_object()
        review_service.renew_claim(request.user, int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.ReviewEventSerializer(many=True))
    @action(detail=True, methods=["get"], **PLAIN_LIST)
    def history(self, request, pk=None):
        """The pair's events; while review is blind, only the machine's and the expert's own."""
        events = review_select.pair_history(self.get_object(), request.user)
        return Response(s.ReviewEventSerializer(events, many=True).data)

    @extend_schema(request=s.DraftRequestSerializer, responses={202: dict})
    @action(detail=False, methods=["post"])
    def draft(self, request):
        """Curators: queue VQA drafting for accepted pairs (idempotent per prompt version)."""
        form = s.DraftRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        queued = drafting_service.request_drafting(request.user, form.validated_data["pairs"])
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.PairRevertSerializer, responses=s.PairSerializer)
    @action(detail=True, methods=["post"])
    def revert(self, request, pk=None):
        """Curators: return the pair to its state after an earlier event (a new event)."""
        form = s.PairRevertSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        pair = review_service.revert_pair(
            int(pk),
            request.user,
            event_id=form.validated_data["event"],
            version=form.validated_data["version"],
        )
        return Response(s.PairSerializer(pair).data)


class DashboardView(RoleScopedAPIView):
    """Progress per book and modality, throughput, timing and agreement (curators)."""

    action_roles = {"get": STAFF}

    @extend_schema(responses=dict)
    def get(self, request):
        return Response(
            {
                "progress": dashboard_select.progress(),
                "throughput": dashboard_select.throughput(),
                "median_seconds": dashboard_select.median_seconds(),
                "agreement": dashboard_select.agreement(),
            }
        )


class ReviewSettingsView(RoleScopedAPIView):
    action_roles = {"get": REVIEWERS, "put": STAFF}

    @extend_schema(responses=s.ProjectSettingsSerializer)
    def get(self, request):
        current = ProjectSettings.current()
        return Response({"reviews_per_item": current.reviews_per_item})

    @extend_schema(request=s.ProjectSettingsSerializer, responses=s.ProjectSettingsSerializer)
    def put(self, request):
        form = s.ProjectSettingsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        current = review_service.set_reviews_per_item(
            request.user, form.validated_data["reviews_per_item"]
        )
        return Response({"reviews_per_item": current.reviews_per_item})
