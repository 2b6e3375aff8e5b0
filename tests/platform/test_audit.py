import pytest

from curation.models import ReviewEvent, Textbook
from curation.services.audit import record_event


@pytest.fixture
def book(db):
    return Textbook.objects.create(
        title="B", sha256="0" * 64, file="books/x.pdf", size_bytes=1, page_count=1
    )


def test_events_are_append_only(book):
    event = record_event(None, book, "textbook.imported", after={"title": "B"})
    assert event.actor is None and event.target_type == "textbook"
    event.note = "rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        ReviewEvent.objects.filter(pk=event.pk).update(note="x")
    with pytest.raises(TypeError):
        ReviewEvent.objects.all().delete()
    assert ReviewEvent.objects.get(pk=event.pk).note == ""


def test_every_model_is_in_the_admin():
    from django.apps import apps
    from django.contrib import admin

    missing = [m.__name__ for m in apps.get_app_config("curation").get_models()
               if m not in admin.site._registry]  # fmt: skip
    assert not missing, missing
