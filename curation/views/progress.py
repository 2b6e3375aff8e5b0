"""The status card htmx polls while a book is ingested or a release is built: one view and
one template (``_progress.html``) for both; each kind adds only its own detail line."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from curation.models import Release, Textbook
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS, STAFF


@dataclass(frozen=True)
class Kind:
    name: str  # element ids: "<name>-status", "<name>-error"; context name of the object
    url_name: str
    template: str
    active: tuple[str, ...]  # statuses that keep the card polling
    done_status: str  # the status styled as done


KINDS: dict[type[models.Model], Kind] = {
    Textbook: Kind(
        "book", "book-progress", "books/_progress.html",
        (Textbook.Status.QUEUED, Textbook.Status.PROCESSING), Textbook.Status.DONE,
    ),
    Release: Kind(
        "release", "release-progress", "releases/_progress.html",
        (Release.Status.BUILDING,), Release.Status.READY,
    ),
}  # fmt: skip


def progress_of(obj: Textbook | Release) -> dict:
    """The card's context: whether it polls, where, and how its status is styled."""
    kind = KINDS[type(obj)]
    return {
        "kind": kind.name,
        "status": obj.status,
        "status_class": "done" if obj.status == kind.done_status else obj.status,
        "polling": obj.status in kind.active,
        "poll_url": reverse(kind.url_name, args=[obj.pk]),
        "error": obj.error,
    }


class ProgressView(RoleRequiredView):
    """The card alone, for htmx; when the work ends the page reloads once to show the
    results below it."""

    model: type[models.Model]

    def get(self, request, pk: int):
        obj = get_object_or_404(self.model, pk=pk)
        kind = KINDS[self.model]
        response = render(request, kind.template, {kind.name: obj, "progress": progress_of(obj)})
        if request.htmx and obj.status not in kind.active:
            response["HX-Refresh"] = "true"
        return response


class BookProgressView(ProgressView):
    allowed_roles = REVIEWERS
    model = Textbook


class ReleaseProgressView(ProgressView):
    allowed_roles = STAFF
    model = Release
