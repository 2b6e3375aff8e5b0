"""Expert review pages: next item, the keyboard-driven review form, conflicts, history."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from curation import limits
from curation.api.base import as_int
from curation.models import Flag, Modality, Pair, RejectReason
from curation.selectors.review import decisions_hidden, review_context
from curation.services import review as review_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import ADMIN, CURATOR, EXPERT, roles_of

REVIEWERS = frozenset({EXPERT, CURATOR, ADMIN})
MODALITY_KEYS = [
    ("1", Modality.CLINICAL),
    ("2", Modality.DERMOSCOPIC),
    ("3", Modality.PATHOLOGICAL),
    ("4", Modality.OTHER),
]
FILTER_KEYS = ("book", "modality", "queue")


def _filters(params) -> review_service.QueueFilter:
    book = params.get("book") or None
    modality = params.get("modality") or None
    adjudication = params.get("queue") == "adjudication"
    return review_service.QueueFilter(
        textbook_id=as_int(book),
        modality=modality if modality in Modality.values else None,
        status=Pair.Status.DISPUTED if adjudication else Pair.Status.PROPOSED,
    )


def _query(params) -> str:
    kept = {k: params[k] for k in FILTER_KEYS if params.get(k)}
    return f"?{urlencode(kept)}" if kept else ""


class ReviewNextView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request):
        try:
            pair_id = review_service.claim_next_id(request.user, _filters(request.GET))
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("home")
        if pair_id is None:
            return render(request, "review/empty.html", {"query": _query(request.GET)})
        return redirect(reverse("review-pair", args=[pair_id]) + _query(request.GET))


def _form_changes(post) -> dict:
    changes = {
        "text": post.get("text", ""),
        "diagnosis": post.get("diagnosis", ""),
        "sex": post.get("sex", ""),
        "age": post.get("age", ""),
        "flags": post.getlist("flags"),
    }
    if post.get("modality"):
        changes["modality"] = post["modality"]
    return changes


def _keep_typed(pair: Pair, post) -> None:
    """Put the posted values on the row in memory (nothing is saved) so the form shows them."""
    for field, value in _form_changes(post).items():
        setattr(pair, field, value)
    pair.reject_reason, pair.reject_note = post.get("reason", ""), post.get("note", "")


class PairReviewView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def _render(self, request, pair_id: int, *, status: int = 200, typed=None, **extra):
        ctx = review_context(pair_id, request.user)
        if ctx is None:
            raise Http404
        if typed is not None:  # a refused form comes back as the expert typed it
            _keep_typed(ctx.pair, typed)
        claim = review_service.claim_of(pair_id)
        adjudicator = bool(roles_of(request.user) & {CURATOR, ADMIN})
        reviewable = ctx.pair.status == Pair.Status.PROPOSED or (
            ctx.pair.status == Pair.Status.DISPUTED and adjudicator
        )
        if claim is None and reviewable:
            claim = review_service.renew_claim(request.user, pair_id)
        page = ctx.figure.page
        context = {
            "ctx": ctx,
            "pair": ctx.pair,
            "page": page,
            "claim": claim,
            "held_by_other": claim is not None and claim.user_id != request.user.pk,
            "modality_keys": MODALITY_KEYS,
            "flags": Flag.choices,
            "reasons": RejectReason.choices,
            "query": _query(request.GET),
            "can_revert": adjudicator,
            "limits": limits,
            # Reviews are blind until the pair is decided; adjudicators see them side by side.
            "reviews": review_service.reviews_of(pair_id)
            if ctx.pair.status == Pair.Status.DISPUTED and adjudicator
            else [],
            **extra,
        }
        return render(request, "review/pair.html", context, status=status)

    def get(self, request, pk: int):
        return self._render(request, pk)

    def post(self, request, pk: int):
        action = request.POST.get("action", "")
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            return self._render(request, pk, status=400, error="The form lost its version.")
        try:
            if action == "skip":
                review_service.skip_pair(pk, request.user)
            else:
                review_service.review_pair(
                    pk,
                    request.user,
                    version=version,
                    action=action,
                    changes=_form_changes(request.POST),
                    reason=request.POST.get("reason", ""),
                    note=request.POST.get("note", ""),
                )
        except ServiceError as exc:
            if exc.code == "stale":
                return self._conflict(request, pk, exc)
            return self._render(
                request, pk, status=exc.status, error=exc.message, typed=request.POST
            )
        return redirect(reverse("review-next") + _query(request.GET))

    def _conflict(self, request, pk: int, exc: ServiceError):
        mine = _form_changes(request.POST)
        current = exc.extra["current"]
        rows = []
        for field in ("status", *review_service.EDITABLE):
            theirs = current.get(field)
            yours = mine.get(field, theirs)
            if field == "age":
                yours = as_int(str(yours))
            if field == "flags":
                theirs, yours = sorted(theirs or []), sorted(yours or [])
            differs = theirs != yours
            rows.append({"field": field, "theirs": theirs, "yours": yours, "differs": differs})
        context = {
            "pair_id": pk,
            "message": exc.message,
            "rows": rows,
            "version": exc.extra["version"],
            "recent": exc.extra["recent"],  # the service kept to what this user may see
            "blind": decisions_hidden(Pair.objects.get(pk=pk), request.user),
            "post": request.POST,
            "mine": mine,
            "query": _query(request.GET),
        }
        return render(request, "review/conflict.html", context, status=409)


class ClaimRenewView(RoleRequiredView):
    """Polled by the open review page so the lease does not lapse while the expert works."""

    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        if not Pair.objects.filter(pk=pk).exists():  # else it would lease a pair that is not
            raise Http404
        try:
            claim = review_service.renew_claim(request.user, pk)
        except ServiceError as exc:
            return HttpResponse(exc.message, status=exc.status)
        return HttpResponse(f"held until {claim.expires_at:%H:%M}", status=200)


class PairRevertView(RoleRequiredView):
    allowed_roles = frozenset({CURATOR, ADMIN})

    def post(self, request, pk: int):
        try:
            review_service.revert_pair(
                pk,
                request.user,
                event_id=int(request.POST.get("event", "0")),
                version=int(request.POST.get("version", "0")),
            )
        except (ServiceError, ValueError) as exc:
            message = exc.message if isinstance(exc, ServiceError) else "Malformed request."
            messages.error(request, message)
        return redirect("review-pair", pk=pk)
