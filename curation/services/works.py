"""Works and editions: which textbooks are editions of one book (one split group)."""

from __future__ import annotations

from django.db import transaction

from curation import limits
from curation.events import EventAction
from curation.models import Textbook, Work
from curation.services.audit import record_event
from curation.services.errors import ServiceError


def set_work(
    book: Textbook,
    user,
    *,
    work_id: int | None = None,
    title: str = "",
    authors: str = "",
) -> Work | None:
    """Put ``book`` in an existing work (``work_id``), a new one (``title``), or none.

    A new work takes ``title`` and ``authors``; with neither a work id nor a title the book
    leaves its work. The audit event keeps the work before and after.
    """
    title, authors = (title or "").strip(), (authors or "").strip()
    limits.check_text("title", title, limits.TITLE, "work title")
    limits.check_text("authors", authors, limits.AUTHORS, "work authors")
    with transaction.atomic():
        book = Textbook.objects.select_for_update().get(pk=book.pk)
        before = {"work": book.work_id}
        if work_id is not None:
            work = Work.objects.filter(pk=work_id).first()
            if work is None:
                raise ServiceError("no_work", "That work does not exist.", status=404)
        elif title:
            work = Work.objects.create(
                title=title,
                authors=authors,
                created_by=user if user is not None and user.is_authenticated else None,
            )
            record_event(
                user, work, EventAction.WORK_CREATED, after={"title": title, "authors": authors}
            )
        else:
            work = None
        if book.work_id == (work.pk if work else None):
            return work
        book.work = work
        book.save(update_fields=["work", "updated_at"])
        record_event(
            user,
            book,
            EventAction.TEXTBOOK_WORK_SET,
            before=before,
            after={"work": work.pk if work else None, "title": work.title if work else ""},
        )
    return work
