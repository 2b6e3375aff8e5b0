"""VQA items over the API: list with filters, claim a pair's drafts, review with a version."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from curation.api import serializers as s
from curation.api.base import PLAIN_LIST, RoleScopedViewSet
from curation.models import VQAItem
from curation.services import vqa as vqa_service
from skinplatform.accounts.roles import REVIEWERS


class VQAItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = s.VQAItemSerializer
    filterset_fields = ["pair", "status", "question_type", "grounded", "visual", "image_input"]
    action_roles = {"*": REVIEWERS}

    def get_queryset(self):
        return VQAItem.objects.order_by("id")

    @extend_schema(request=s.VQAItemCreateSerializer, responses={201: s.VQAItemSerializer})
    def create(self, request):
        """An expert's own question on a pair (accepted as written, no draft)."""
        form = s.VQAItemCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        item = vqa_service.add_item(
            form.validated_data["pair"],
            request.user,
            question_type=form.validated_data["question_type"],
            question=form.validated_data["question"],
            answer=form.validated_data["answer"],
        )
        return Response(s.VQAItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.VQAItemSerializer(many=True), 204: None})
    @action(detail=False, methods=["post"], url_path="claim-next", **PLAIN_LIST)
    def claim_next(self, request):
        """Lease the next image whose drafted questions await review; returns its items."""
        pair = vqa_service.claim_next_pair(request.user)
        if pair is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        items = VQAItem.objects.filter(pair=pair).order_by("id")
        return Response(s.VQAItemSerializer(items, many=True).data)

    @extend_schema(request=s.VQAReviewSerializer, responses=s.VQAItemSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """Accept (with edits) or reject; a stale ``version`` gets 409 with the stored state."""
        form = s.VQAReviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        item = vqa_service.review_item(
            int(pk),
            request.user,
            version=data["version"],
            action=data["action"],
            question=data.get("question"),
            answer=data.get("answer"),
            reason=data["reason"],
            note=data["note"],
        )
        return Response(s.VQAItemSerializer(item).data)

    @extend_schema(responses=s.ReviewEventSerializer(many=True))
    @action(detail=True, methods=["get"], **PLAIN_LIST)
    def history(self, request, pk=None):
        self.get_object()
        return Response(s.ReviewEventSerializer(vqa_service.history(int(pk)), many=True).data)
