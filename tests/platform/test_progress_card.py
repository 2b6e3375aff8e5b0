"""The one status card for a book's ingest and a release's build: it polls while the work
runs, stops and reloads the page once when it ends, and shows the error."""

import pytest

from curation.models import Release, Textbook
from tests.factories import make_book


@pytest.fixture
def curator(client, make_user):
    client.force_login(make_user("cur", "curator"))
    return client


def test_a_book_card_polls_while_processing_and_reloads_once_done(curator):
    book = make_book()
    Textbook.objects.filter(pk=book.pk).update(status="processing", pages_done=3)
    url = f"/books/{book.pk}/progress/"
    running = curator.get(url, HTTP_HX_REQUEST="true")
    assert f'hx-get="{url}"' in running.content.decode()
    assert 'id="pages-done">3<' in running.content.decode()
    assert "HX-Refresh" not in running
    Textbook.objects.filter(pk=book.pk).update(status="failed", error="the PDF is encrypted")
    ended = curator.get(url, HTTP_HX_REQUEST="true")
    body = ended.content.decode()
    assert "hx-get" not in body and ended["HX-Refresh"] == "true"
    assert 'id="book-error">the PDF is encrypted<' in body
    page = curator.get(f"/books/{book.pk}/").content.decode()
    assert 'id="book-status" class="status-failed"' in page


def test_a_release_card_polls_while_building_and_styles_ready_as_done(curator):
    release = Release.objects.create(name="derm", version="1.0.0", status="building")
    Release.objects.filter(pk=release.pk).update(phase="writing", progress=0.4)
    url = f"/releases/{release.pk}/progress/"
    running = curator.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-get="{url}"' in running and "writing · 40%" in running
    Release.objects.filter(pk=release.pk).update(status="ready")
    ended = curator.get(url, HTTP_HX_REQUEST="true")
    assert ended["HX-Refresh"] == "true"
    assert 'id="release-status" class="status-done">ready<' in ended.content.decode()
    page = curator.get(f"/releases/{release.pk}/").content.decode()
    assert (
        'class="status-done">ready<' in page
        and "hx-get" not in page.split('id="progress"')[1][:200]
    )
