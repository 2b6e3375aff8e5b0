"""Curator pages: cut a release (with a live count preview), watch it build, compare versions."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from curation.forms import TrainingRunForm
from curation.models import Modality, Pair, Release, Textbook, TrainingRun
from curation.selectors import releases as select
from curation.selectors import training as select_training
from curation.services import releases as release_service
from curation.services import training as training_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from curation.views.progress import progress_of
from skinplatform.accounts.roles import STAFF

MODALITIES = [m for m in Modality.values if m != Modality.MIXED]
STATUSES = [Pair.Status.ACCEPTED, Pair.Status.EDITED]


def _filter_from(data) -> dict:
    return {
        "statuses": data.getlist("statuses"),
        "modalities": data.getlist("modalities"),
        "books": [b for b in data.getlist("books") if b],
        "reviewed_from": data.get("reviewed_from") or None,
        "reviewed_to": data.get("reviewed_to") or None,
        "min_reviews": data.get("min_reviews") or 0,
    }


def _split_from(data) -> dict:
    split = {"rule": data.get("split_rule") or "figure", "seed": data.get("seed") or 0}
    try:
        split["seed"] = int(split["seed"])
    except ValueError as exc:
        raise ServiceError("bad_split", "The seed is a whole number.") from exc
    return split


class ReleaseListView(RoleRequiredView):
    allowed_roles = STAFF

    def get(self, request):
        return render(request, "releases/list.html", {"releases": select.releases()[:200]})

    def post(self, request):
        """Create a release from the new-release form."""
        try:
            release = release_service.create_release(
                name=request.POST.get("name", "").strip(),
                version=request.POST.get("version", "").strip(),
                description=request.POST.get("description", ""),
                filter=_filter_from(request.POST),
                split=_split_from(request.POST),
                user=request.user,
            )
        except ServiceError as exc:
            return ReleaseNewView().render_form(request, error=exc, status=exc.status)
        messages.info(request, f"Release {release} is being built.")
        return redirect("release-detail", pk=release.pk)


class ReleaseNewView(RoleRequiredView):
    allowed_roles = STAFF

    def render_form(self, request, *, error: ServiceError | None = None, status: int = 200):
        data = request.POST if request.method == "POST" else None
        spec = _filter_from(data) if data is not None else {"statuses": STATUSES}
        context = {
            "books": Textbook.objects.order_by("title"),
            "modalities": MODALITIES,
            "statuses": STATUSES,
            "error": error,
            "form": data,
            "spec": spec,
            "preview": _safe_preview(spec),
        }
        return render(request, "releases/new.html", context, status=status)

    def get(self, request):
        return self.render_form(request)


def _safe_preview(spec: dict) -> dict | ServiceError:
    try:
        return release_service.preview(spec)
    except ServiceError as exc:
        return exc


class ReleasePreviewView(RoleRequiredView):
    """The counts fragment the new-release form swaps in (htmx) whenever a filter changes."""

    allowed_roles = STAFF

    def get(self, request):
        preview = _safe_preview(_filter_from(request.GET))
        return render(request, "releases/_preview.html", {"preview": preview})


def render_detail(request, release: Release, form: TrainingRunForm | None = None, status=200):
    """The release page; `form` is the training form as typed when it was refused."""
    runs = list(release.training_runs.all()[:50])
    context = {
        "release": release,
        "progress": progress_of(release),
        "versions": Release.objects.filter(name=release.name).exclude(pk=release.pk),
        "runs": runs,
        "cancellable": training_service.CANCELLABLE,
        "train_form": form or TrainingRunForm(runs=runs, initial={"stage": "sft"}),
        "workers": select_training.workers(),
    }
    return render(request, "releases/detail.html", context, status=status)


class ReleaseDetailView(RoleRequiredView):
    allowed_roles = STAFF

    def get(self, request, pk: int):
        return render_detail(request, get_object_or_404(select.releases(), pk=pk))


class ReleaseTrainView(RoleRequiredView):
    """Queue a training run on a ready release; a GPU worker (``python -m ml worker``) takes it.

    A refused field comes back on the page (400) with its message and what was typed."""

    allowed_roles = STAFF

    def post(self, request, pk: int):
        release = get_object_or_404(select.releases(), pk=pk)
        form = TrainingRunForm(request.POST, runs=release.training_runs.all()[:50])
        if not form.is_valid():
            return render_detail(request, release, form, status=400)
        try:
            run = training_service.create_training_run(
                release, form.cleaned_data["stage"], form.config, request.user
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("release-detail", pk=pk)
        messages.success(request, f"Training run #{run.pk} queued; a GPU worker will pick it up.")
        return redirect("release-detail", pk=pk)


class TrainingRunCancelView(RoleRequiredView):
    """Cancel a queued or running run from the release page (curators, admins)."""

    allowed_roles = STAFF

    def post(self, request, pk: int, run_id: int):
        run = get_object_or_404(TrainingRun, pk=run_id, release_id=pk)
        was_running = run.status == TrainingRun.Status.RUNNING
        try:
            training_service.cancel_training_run(run.pk, request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            note = " Its worker stops at its next progress report." if was_running else ""
            messages.success(request, f"Training run #{run.pk} cancelled.{note}")
        return redirect("release-detail", pk=pk)


class ReleaseNextVersionView(RoleRequiredView):
    allowed_roles = STAFF

    def post(self, request, pk: int):
        get_object_or_404(Release, pk=pk)
        try:
            release = release_service.create_next_version(
                pk, request.user, version=request.POST.get("version", "").strip()
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("release-detail", pk=pk)
        messages.info(request, f"Release {release} is being built.")
        return redirect("release-detail", pk=release.pk)


class ReleaseRebuildView(RoleRequiredView):
    allowed_roles = STAFF

    def post(self, request, pk: int):
        get_object_or_404(Release, pk=pk)
        try:
            release_service.rebuild_release(pk, request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("release-detail", pk=pk)


class ReleaseDiffView(RoleRequiredView):
    allowed_roles = STAFF
    shown = 500

    def get(self, request, pk: int):
        new = get_object_or_404(Release, pk=pk)
        against = request.GET.get("against") or new.parent_id
        context = {"release": new, "versions": Release.objects.filter(name=new.name)}
        if not against:
            context["error"] = "Choose a version to compare with."
            return render(request, "releases/diff.html", context, status=400)
        try:
            old = get_object_or_404(Release, pk=int(against))
            for release in (old, new):
                release_service.ready_root(release)
        except (ValueError, ServiceError) as exc:
            context["error"] = getattr(exc, "message", "Choose a version to compare with.")
            return render(request, "releases/diff.html", context, status=409)
        result = select.diff(old, new)
        ids = (result.added + result.removed + result.changed)[: self.shown * 3]
        summaries = select.pair_summaries(ids)
        context.update(
            {
                "old": old,
                "diff": result,
                "added": [summaries.get(i, {"id": i}) for i in result.added[: self.shown]],
                "removed": [summaries.get(i, {"id": i}) for i in result.removed[: self.shown]],
                "changed": [summaries.get(i, {"id": i}) for i in result.changed[: self.shown]],
                "shown": self.shown,
            }
        )
        return render(request, "releases/diff.html", context)
