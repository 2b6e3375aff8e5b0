"""Expert review of drafted VQA items, one pair (image) at a time."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from curation import limits
from curation.api.base import as_int
from curation.models import Pair, ReviewEvent, VQAItem
from curation.services import vqa as vqa_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import ADMIN, CURATOR, EXPERT

REVIEWERS = frozenset({EXPERT, CURATOR, ADMIN})


class VQANextView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request):
        book = request.GET.get("book", "")
        pair = vqa_service.claim_next_pair(request.user, textbook_id=as_int(book))
        if pair is None:
            return render(request, "review/vqa_empty.html")
        return redirect("vqa-pair", pk=pair.pk)


class VQAPairView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request, pk: int, *, status: int = 200, error: str = "", typed=None, added=None):
        pair = (
            Pair.objects.select_related("panel", "panel__figure", "textbook").filter(pk=pk).first()
        )
        if pair is None:
            raise Http404
        claim = vqa_service.hold(request.user, pk)
        items = list(VQAItem.objects.filter(pair=pair).order_by("status", "question_type", "id"))
        events: dict[int, list] = {}
        for event in (
            ReviewEvent.objects.filter(target_type="vqaitem", target_id__in=[i.pk for i in items])
            .select_related("actor")
            .order_by("created_at", "id")
        ):
            events.setdefault(event.target_id, []).append(event)
        for item in items:
            item.timeline = events.get(item.pk, [])
            if typed is not None and item.pk == typed[0]:  # a refused edit, as typed
                item.question = typed[1].get("question", item.question)
                item.answer = typed[1].get("answer", item.answer)
                item.typed_note = typed[1].get("note", "")
        context = {
            "pair": pair,
            "figure": pair.panel.figure,
            "items": items,
            "claim": claim,
            "held_by_other": claim is not None and claim.user_id != request.user.pk,
            "reasons": vqa_service.REJECT_REASONS.items(),
            "error": error,
            "added": added or {},
            "limits": limits,
        }
        return render(request, "review/vqa_pair.html", context, status=status)


class VQAItemReviewView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        item = VQAItem.objects.filter(pk=pk).only("pair_id").first()
        if item is None:
            raise Http404
        try:
            vqa_service.review_item(
                pk,
                request.user,
                version=int(request.POST.get("version") or 0),
                action=request.POST.get("action", ""),
                question=request.POST.get("question"),
                answer=request.POST.get("answer"),
                reason=request.POST.get("reason", ""),
                note=request.POST.get("note", ""),
            )
        except ServiceError as exc:
            if exc.code == "stale":
                context = {"item_id": pk, "pair_id": item.pair_id, "message": exc.message,
                           "current": exc.extra["current"], "version": exc.extra["version"],
                           "post": request.POST}  # fmt: skip
                return render(request, "review/vqa_conflict.html", context, status=409)
            typed = (pk, request.POST)
            return VQAPairView().get(
                request, item.pair_id, status=exc.status, error=exc.message, typed=typed
            )
        if VQAItem.objects.filter(pair_id=item.pair_id, status="drafted").exists():
            return redirect(reverse("vqa-pair", args=[item.pair_id]) + "#drafted")
        return redirect("vqa-next")


class VQAAddView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        try:
            vqa_service.add_item(
                pk,
                request.user,
                question_type=request.POST.get("question_type", ""),
                question=request.POST.get("question", ""),
                answer=request.POST.get("answer", ""),
            )
        except ServiceError as exc:
            if exc.status == 404:
                messages.error(request, exc.message)
                return redirect("vqa-pair", pk=pk)
            return VQAPairView().get(
                request, pk, status=exc.status, error=exc.message, added=request.POST
            )
        return redirect("vqa-pair", pk=pk)
