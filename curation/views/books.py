"""Curator pages: upload a textbook, watch its ingest, see what was proposed."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from curation.models import Pair, Textbook
from curation.selectors import dashboard as progress_select
from curation.selectors import textbooks as select
from curation.selectors import works as select_works
from curation.services import textbooks as textbook_service
from curation.services import works as work_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from curation.views.progress import progress_of
from skinplatform.accounts.roles import (
    ADMIN,
    CURATOR,
    EXPERT,
    ML_WORKER,
    REVIEWERS,
    STAFF,
    roles_of,
)


class HomeView(RoleRequiredView):
    allowed_roles = frozenset({CURATOR, EXPERT, ADMIN, ML_WORKER})

    def get(self, request):
        roles = roles_of(request.user)
        if roles & STAFF:
            return redirect("book-list")
        if EXPERT in roles:
            return redirect("review-next")
        return redirect("api-docs")


class BookListView(RoleRequiredView):
    allowed_roles = REVIEWERS
    template = "books/list.html"

    def get(self, request, *, error: ServiceError | None = None, status: int = 200):
        books = select.textbooks().annotate(
            to_review=Count("pairs", filter=Q(pairs__status=Pair.Status.PROPOSED))
        )[:200]
        context = {"books": books, "error": error, "queue": reverse("review-next")}
        return render(request, self.template, context, status=status)

    def post(self, request):
        if not (roles_of(request.user) & STAFF):
            return self.get(
                request, error=ServiceError("forbidden", "Only curators upload."), status=403
            )
        upload = request.FILES.get("file")
        if upload is None:
            error = ServiceError("no_file", "Choose a PDF file to upload.")
            return self.get(request, error=error, status=400)
        try:
            result = textbook_service.import_textbook(
                upload,
                filename=upload.name,
                user=request.user,
                metadata=textbook_service.BookMetadata(
                    title=request.POST.get("title", ""),
                    edition=request.POST.get("edition", ""),
                    authors=request.POST.get("authors", ""),
                    licence_note=request.POST.get("licence_note", ""),
                ),
            )
        except ServiceError as exc:
            return self.get(request, error=exc, status=exc.status)
        if not result.created:
            messages.info(request, "This file was uploaded before; here is that book.")
        elif result.waiting_for_broker:
            messages.warning(request, f"Uploaded and {textbook_service.BROKER_DOWN_MESSAGE}.")
        return redirect("book-detail", pk=result.textbook.pk)


class BookDetailView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request, pk: int):
        book = get_object_or_404(Textbook, pk=pk)
        context = {
            "book": book,
            "progress": progress_of(book),
            "figures": select.figures_of(book.pk)[:500],
            "counts": select.pair_counts(book.pk),
            "modalities": progress_select.progress(book.pk),
            "queue": reverse("review-next"),
            # the work/edition form (books/_work.html)
            "work_suggestion": select_works.suggest_work(book),
            "works": select_works.works()[:500],
        }
        return render(request, "books/detail.html", context)


class BookReingestView(RoleRequiredView):
    allowed_roles = STAFF

    def post(self, request, pk: int):
        get_object_or_404(Textbook, pk=pk)
        try:
            textbook_service.start_ingest(pk, request.user, force=bool(request.POST.get("force")))
        except ServiceError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("book-detail", args=[pk]))


class BookWorkView(RoleRequiredView):
    """The book page's work/edition form: join a work, start one, or leave it."""

    allowed_roles = STAFF

    def post(self, request, pk: int):
        book = get_object_or_404(Textbook, pk=pk)
        raw = request.POST.get("work", "")
        try:
            work_id = int(raw) if raw.isdigit() else None
            work_service.set_work(
                book,
                request.user,
                work_id=work_id,
                title="" if work_id else request.POST.get("title", ""),
                authors=request.POST.get("authors", ""),
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Work saved.")
        return HttpResponseRedirect(reverse("book-detail", args=[pk]))


class StoredFileView(RoleRequiredView):
    """Crops and PDFs are textbook content under copyright: served to signed-in roles only."""

    allowed_roles = REVIEWERS
    prefixes = ("crops/", "books/", "pages/")

    def get(self, request, path: str):
        if ".." in path.split("/") or not path.startswith(self.prefixes):
            raise Http404
        if path.startswith("books/") and not (roles_of(request.user) & STAFF):
            raise Http404
        if not default_storage.exists(path):
            raise Http404
        try:
            handle = default_storage.open(path, "rb")
        except IsADirectoryError as exc:  # a folder "exists" too; only files are served
            raise Http404 from exc
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        response = FileResponse(handle, content_type=content_type)
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response
