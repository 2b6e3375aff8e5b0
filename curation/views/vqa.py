"""Expert review of drafted VQA items, one pair (image) at a time.

The page works with and without script. With htmx a decision swaps only its card (the
cards keep their order and the page its scroll position), and the add form swaps itself,
keeping what was typed when it is refused; without, each form posts and the page reloads.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from curation import limits
from curation.api.base import as_int
from curation.models import VQAItem
from curation.selectors.vqa import conflict_details, item_card, vqa_page
from curation.services import vqa as vqa_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS

DEFAULT_TYPE = "diagnosis"


def _keep_typed(item: VQAItem, error: str, typed) -> None:
    """A refused decision comes back as the expert typed it, with the reason beside it (on
    the row in memory only: nothing is saved)."""
    item.question = typed.get("question", item.question)
    item.answer = typed.get("answer", item.answer)
    item.typed_reason = typed.get("reason", "")
    item.typed_note = typed.get("note", "")
    item.rejecting = typed.get("action") == "reject"
    item.error = error


def _card_context(item: VQAItem, *, error: str = "", typed=None) -> dict:
    if typed is not None:
        _keep_typed(item, error, typed)
    return {"item": item, "reasons": vqa_service.REJECT_REASONS.items(), "limits": limits}


def _add_context(pair_id: int, *, error: str = "", added=None) -> dict:
    added = added or {}
    return {
        "pair_id": pair_id,
        "add_error": error,
        "added": {
            "question_type": added.get("question_type", DEFAULT_TYPE),
            "question": added.get("question", ""),
            "answer": added.get("answer", ""),
        },
        "limits": limits,
    }


class VQANextView(RoleRequiredView):
    """The next image with drafted questions; ``?after=<pair>`` moves on from that image."""

    allowed_roles = REVIEWERS

    def get(self, request):
        book = request.GET.get("book", "")
        after = as_int(request.GET.get("after", ""))
        pair = vqa_service.claim_next_pair(request.user, textbook_id=as_int(book), after=after)
        if pair is None:
            return render(request, "review/vqa_empty.html", {"after": after})
        url = reverse("vqa-pair", args=[pair.pk])
        return redirect(f"{url}?{urlencode({'book': book})}" if book else url)


class VQAPairView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request, pk: int, *, status: int = 200, error: str = "", typed=None, added=None,
            add_error: str = ""):  # fmt: skip
        page = vqa_page(pk)
        if page is None:
            raise Http404
        claim = vqa_service.hold(request.user, pk)
        for item in page.items:
            if typed is not None and item.pk == typed[0]:
                _keep_typed(item, error, typed[1])
        book = request.GET.get("book", "")
        next_query = {"after": pk, **({"book": book} if book else {})}
        context = {
            "pair": page.pair,
            "figure": page.pair.panel.figure,
            "items": page.items,
            "previous_id": page.previous_id,
            "next_url": f"{reverse('vqa-next')}?{urlencode(next_query)}",
            "claim": claim,
            "held_by_other": claim is not None and claim.user_id != request.user.pk,
            "reasons": vqa_service.REJECT_REASONS.items(),
            "error": error if typed is None else "",
            **_add_context(pk, error=add_error, added=added),
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
                return self._conflict(request, pk, item.pair_id, exc)
            if request.htmx:
                card = item_card(pk)
                context = _card_context(card, error=exc.message, typed=request.POST)
                return render(request, "review/_vqa_card.html", context, status=exc.status)
            return VQAPairView().get(
                request,
                item.pair_id,
                status=exc.status,
                error=exc.message,
                typed=(pk, request.POST),
            )
        if request.htmx:  # only this card changes; the page stays where it is
            return render(request, "review/_vqa_card.html", _card_context(item_card(pk)))
        if VQAItem.objects.filter(pair_id=item.pair_id, status="drafted").exists():
            return redirect(reverse("vqa-pair", args=[item.pair_id]) + "#drafted")
        return redirect("vqa-next")

    def _conflict(self, request, pk: int, pair_id: int, exc: ServiceError):
        current = exc.extra["current"]
        context = {
            "item_id": pk,
            "pair_id": pair_id,
            "message": exc.message,
            "current": current,
            "version": exc.extra["version"],
            "post": request.POST,
            **conflict_details(pk, request.POST),
        }
        response = render(request, "review/vqa_conflict.html", context, status=409)
        if request.htmx:  # the conflict takes the card's place; the other cards stay
            response["HX-Retarget"] = f"#item-{pk}"
            response["HX-Reswap"] = "outerHTML"
            response["HX-Reselect"] = "#conflict"
        return response


class VQAAddView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        try:
            item = vqa_service.add_item(
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
            if request.htmx:  # the error beside the form, the typed text kept
                context = _add_context(pk, error=exc.message, added=request.POST)
                return render(request, "review/_vqa_add.html", context, status=exc.status)
            return VQAPairView().get(
                request, pk, status=exc.status, add_error=exc.message, added=request.POST
            )
        if request.htmx:  # a fresh form, and the new card appended after the others
            context = {**_add_context(pk), **_card_context(item_card(item.pk)), "oob": True}
            return render(request, "review/_vqa_add.html", context)
        return redirect("vqa-pair", pk=pk)
