"""Expert review pages: next item, the keyboard-driven review form, conflicts, history."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from curation import limits
from curation.api.base import as_int
from curation.models import Flag, Modality, Pair, RejectReason, Textbook
from curation.selectors.history import pair_history
from curation.selectors.review import decisions_hidden, next_preview, queue_progress, review_context
from curation.services import review as review_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS, STAFF, roles_of

MODALITY_KEYS = [
    ("1", Modality.CLINICAL),
    ("2", Modality.DERMOSCOPIC),
    ("3", Modality.PATHOLOGICAL),
    ("4", Modality.OTHER),
]
FILTER_KEYS = ("book", "modality", "flag", "confidence", "order", "queue")
# The confidence filter's choices: every pair, or only those the extractor doubts.
CONFIDENCE_CHOICES = [("", "any confidence"), ("doubtful", "doubtful only")]
ORDER_CHOICES = [("", "oldest first"), ("doubtful", "doubtful first")]


def _filters(params) -> review_service.QueueFilter:
    book = params.get("book") or None
    modality = params.get("modality") or None
    flag = params.get("flag") or None
    adjudication = params.get("queue") == "adjudication"
    return review_service.QueueFilter(
        textbook_id=as_int(book),
        modality=modality if modality in Modality.values else None,
        status=Pair.Status.DISPUTED if adjudication else Pair.Status.PROPOSED,
        flag=flag if flag in Flag.values else None,
        doubtful=params.get("confidence") == "doubtful",
        order="doubtful" if params.get("order") == "doubtful" else "id",
    )


def _filter_choices(params) -> dict:
    """The review page's filter dropdowns, with what is chosen now."""
    return {
        "books": Textbook.objects.order_by("title").values_list("pk", "title"),
        "modalities": [m for m in Modality.choices if m[0] != Modality.MIXED],
        "flags": Flag.choices,
        "confidences": CONFIDENCE_CHOICES,
        "orders": ORDER_CHOICES,
        "chosen": {k: params.get(k, "") for k in FILTER_KEYS},
    }


def _query(params) -> str:
    kept = {k: params[k] for k in FILTER_KEYS if params.get(k)}
    return f"?{urlencode(kept)}" if kept else ""


def _with(params, **more: str) -> str:
    """The queue filters of ``params`` plus ``more``, as a query string."""
    kept = {k: params[k] for k in FILTER_KEYS if params.get(k)}
    return f"?{urlencode({**kept, **more})}"


class ReviewNextView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request):
        try:
            pair_id = review_service.claim_next_id(request.user, _filters(request.GET))
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("home")
        if pair_id is None:
            if request.htmx:  # the empty queue is a page of its own
                return HttpResponse(headers={"HX-Redirect": request.get_full_path()})
            return render(request, "review/empty.html", {"query": _query(request.GET)})
        if request.htmx:  # the page swaps the pair in place: no redirect, no reload
            return PairReviewView().render_pair(request, pair_id, push=True)
        return redirect(reverse("review-pair", args=[pair_id]) + _query(request.GET))


def _form_changes(post) -> dict:
    """What the reviewer changed on the form.

    The review form posts every field it shows, and what it showed (``shown``): a field
    posted as it was shown is no change, so a page opened before someone else changed the
    pair (and reapplied after the conflict) never undoes their change in a field the reviewer
    did not touch. Without ``shown`` (the conflict page, other clients) every posted field is
    sent and the service keeps those equal to what is stored.
    """
    changes = {field: post[field] for field in ("text", "diagnosis", "sex", "age") if field in post}
    if post.get("modality"):
        changes["modality"] = post["modality"]
    if "flags" in post:  # the form's empty "flags" input: the flags are on it, ticked or not
        changes["flags"] = [flag for flag in post.getlist("flags") if flag]
    try:
        shown = json.loads(post["shown"])
        cleaned = review_service.clean_changes(changes)
    except (KeyError, ValueError, ServiceError):
        return changes  # nothing to compare with, or invalid: the service says what is wrong
    if not isinstance(shown, dict):
        return changes
    return {
        field: value
        for field, value in changes.items()
        if cleaned[field] != review_service.normal(field, shown.get(field))
    }


def _shown(pair: Pair) -> str:
    """The values the form shows, posted back with it (see ``_form_changes``)."""
    return json.dumps({field: getattr(pair, field) for field in review_service.EDITABLE})


def _keep_typed(pair: Pair, post) -> None:
    """Put the posted values on the row in memory (nothing is saved) so the form shows them."""
    for field, value in _form_changes(post).items():
        setattr(pair, field, value)
    pair.reject_reason, pair.reject_note = post.get("reason", ""), post.get("note", "")


class PairReviewView(RoleRequiredView):
    """One pair. Opening it by its URL claims nothing: only Review / next (``ReviewNextView``)
    does, so browsing history or the dashboard never locks a pair away from the experts.

    The form is read-only while someone else holds the pair, and on a decided pair until the
    reviewer chooses "change decision" (``?change=1``), which names who decided and when.
    An unclaimed pair still waiting for review can be decided from here: the write takes the
    pair's row lock and refuses if anyone holds a claim (see ``review_pair``).
    """

    allowed_roles = REVIEWERS

    def _render(
        self,
        request,
        pair_id: int,
        *,
        status: int = 200,
        changing=None,
        typed=None,
        push: bool = False,
        **extra,
    ):
        """The review page, or for htmx (the page swapping pairs in place) its ``#pair``
        part alone; ``push`` puts the pair's own URL in the address bar."""
        ctx = review_context(pair_id, request.user)
        if ctx is None:
            raise Http404
        pair = ctx.pair
        if typed is not None:  # a refused form comes back as the expert typed it
            _keep_typed(pair, typed)
        claim = review_service.claim_of(pair_id)
        mine = claim is not None and claim.user_id == request.user.pk
        held_by_other = claim is not None and not mine
        adjudicator = bool(roles_of(request.user) & STAFF)
        decided = review_service.decided_by(pair)
        if changing is None:
            changing = request.GET.get("change") == "1"
        changing = bool(decided) and changing and not held_by_other
        reviewable = pair.status == Pair.Status.PROPOSED or (
            pair.status == Pair.Status.DISPUTED and adjudicator
        )
        readonly = held_by_other or (not changing and not reviewable)
        page = ctx.figure.page
        filters = _filters(request.GET)
        context = {
            "ctx": ctx,
            "pair": pair,
            "page": page,
            "claim": claim,
            # Only the page that claimed the pair keeps its lease alive.
            "renews": mine,
            "held_by_other": held_by_other,
            "decided": decided,
            "changing": changing,
            "readonly": readonly,
            "change_url": _with(request.GET, change="1"),
            "shown": _shown(pair),
            "modality_keys": MODALITY_KEYS,
            "flags": Flag.choices,
            "reasons": RejectReason.choices,
            "query": _query(request.GET),
            "can_revert": adjudicator,
            "history": pair_history(ctx, can_revert=adjudicator),
            "limits": limits,
            # Reviews are blind until the pair is decided; adjudicators see them side by side.
            "reviews": review_service.reviews_of(pair_id)
            if pair.status == Pair.Status.DISPUTED and adjudicator
            else [],
            "progress": queue_progress(
                review_service.filter_pairs(Pair.objects, filters), request.user
            ),
            "next": next_preview(review_service.queue(filters), pair_id),
            "doubtful": review_service.is_doubtful(pair),
            "filter": _filter_choices(request.GET),
            "filtered": bool(_query(request.GET)),
            **extra,
        }
        template = "review/_pair.html" if request.htmx else "review/pair.html"
        response = render(request, template, context, status=status)
        if request.htmx and push:
            response["HX-Push-Url"] = reverse("review-pair", args=[pair_id]) + _query(request.GET)
        return response

    def render_pair(self, request, pair_id: int, **kwargs):
        """The pair's page (or its ``#pair`` part for htmx), for the other review views."""
        return self._render(request, pair_id, **kwargs)

    def get(self, request, pk: int):
        return self._render(request, pk)

    def post(self, request, pk: int):
        action = request.POST.get("action", "")
        redecide = request.POST.get("redecide") == "1"
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            return self._render(request, pk, status=400, error="The form lost its version.")
        decided = None
        try:
            if action == "skip":
                review_service.skip_pair(pk, request.user)
            else:
                decided = review_service.review_pair(
                    pk,
                    request.user,
                    version=version,
                    action=action,
                    changes=_form_changes(request.POST),
                    reason=request.POST.get("reason", ""),
                    note=request.POST.get("note", ""),
                    redecide=redecide,
                )
        except ServiceError as exc:
            if exc.code in ("stale", "decided"):
                return self._conflict(request, pk, exc)
            return self._render(
                request,
                pk,
                status=exc.status,
                error=exc.message,
                changing=redecide,
                typed=request.POST,
            )
        if not request.htmx:
            return redirect(reverse("review-next") + _query(request.GET))
        return self._next_in_place(request, pk, decided)

    def _next_in_place(self, request, pk: int, decided: Pair | None):
        """After a decision (or skip) on the htmx page: the next pair's part, claimed, with
        an Undo offer for the decision just made (``decided``)."""
        try:
            next_id = review_service.claim_next_id(request.user, _filters(request.GET))
        except ServiceError as exc:
            messages.error(request, exc.message)
            return HttpResponse(headers={"HX-Redirect": reverse("home")})
        if next_id is None:
            return HttpResponse(
                headers={"HX-Redirect": reverse("review-next") + _query(request.GET)}
            )
        undo = None
        if decided is not None:
            undo = {
                "pair": decided.pk,
                "event": decided.decision_event_id,
                "status": decided.status,
            }
        else:
            undo = {"pair": pk, "event": None, "status": "skipped"}
        return self._render(request, next_id, push=True, undo=undo)

    def _conflict(self, request, pk: int, exc: ServiceError):
        mine = _form_changes(request.POST)
        try:
            compared = review_service.clean_changes(mine)
        except ServiceError:
            compared = mine
        current = exc.extra["current"]
        rows = []
        for field in ("status", *review_service.EDITABLE):
            theirs = current.get(field)
            if field in review_service.EDITABLE:
                theirs = review_service.normal(field, theirs)
            changed = field in compared
            yours = compared[field] if changed else theirs
            rows.append({"field": field, "theirs": theirs, "yours": yours, "changed": changed,
                         "differs": theirs != yours})  # fmt: skip
        decided = exc.extra.get("decided")
        context = {
            "pair_id": pk,
            "message": exc.message,
            "rows": rows,
            "version": exc.extra["version"],
            "recent": exc.extra["recent"],  # the service kept to what this user may see
            "image": exc.extra.get("image"),
            "blind": decisions_hidden(Pair.objects.get(pk=pk), request.user),
            "decided": decided,
            "decided_by_me": bool(decided) and decided["by_id"] == request.user.pk,
            # Reapplying over a decision replaces it: the form asks for a confirmation.
            "needs_confirmation": bool(decided),
            "post": request.POST,
            "mine": mine,
            "query": _query(request.GET),
        }
        response = render(request, "review/conflict.html", context, status=409)
        if request.htmx:  # a page of its own: it replaces the whole review page
            response["HX-Retarget"] = "body"
            response["HX-Reswap"] = "innerHTML"
        return response


class PairUndoView(RoleRequiredView):
    """The Undo of the toast shown after a decision: takes the expert's own decision back
    (``undo_decision``) and shows that pair again, held by them, to decide anew."""

    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        try:
            review_service.undo_decision(
                pk, request.user, event_id=as_int(request.POST.get("event")) or 0
            )
        except ServiceError as exc:
            if not request.htmx:
                messages.error(request, exc.message)
                return redirect(reverse("review-next") + _query(request.GET))
            response = render(request, "review/_toast.html", {"message": exc.message},
                              status=exc.status)  # fmt: skip
            response["HX-Retarget"] = "#toast"
            response["HX-Reswap"] = "outerHTML"
            return response
        if not request.htmx:
            return redirect(reverse("review-pair", args=[pk]) + _query(request.GET))
        return PairReviewView().render_pair(
            request, pk, push=True, notice="Decision undone: the pair is yours to decide again."
        )


class ClaimRenewView(RoleRequiredView):
    """Polled by the review page that claimed the pair, so the lease does not lapse while the
    expert works; it never creates a claim (409 for a page that holds none)."""

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
    allowed_roles = STAFF

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
