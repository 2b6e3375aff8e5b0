"""Uploads over the API: good files are stored once, bad files are refused and leave nothing."""

import pytest
from django.core.files.storage import default_storage

from curation.models import IngestChunk, ReviewEvent, Textbook
from curation.samplebook import bad_pdfs
from tests.forged_pdfs import write_forged_page_count, write_garbage_after_header


@pytest.fixture
def curator(api_client_for, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "curation.services.dispatch.enqueue_ingest", lambda *args: sent.append(args)
    )
    client = api_client_for("curator")
    client.sent = sent
    return client


def _upload(client, path, **fields):
    with open(path, "rb") as fh:
        return client.post("/api/textbooks/", {"file": fh, **fields}, format="multipart")


def _stored_books() -> list[str]:
    if not default_storage.exists("books"):
        return []
    dirs, _ = default_storage.listdir("books")
    return sorted(f for d in dirs for f in default_storage.listdir(f"books/{d}")[1])


def test_upload_stores_content_addressed_and_queues_ingest(curator, sample_book):
    path, _ = sample_book
    response = _upload(curator, path, title="Atlas", edition="2nd")
    assert response.status_code == 201, response.content
    body = response.json()
    book = Textbook.objects.get(pk=body["id"])
    assert book.title == "Atlas" and book.edition == "2nd"
    assert book.status == "queued" and book.page_count > 1
    assert book.file == f"books/{book.sha256[:2]}/{book.sha256}.pdf"
    assert default_storage.exists(book.file)
    assert IngestChunk.objects.filter(textbook=book, run=1).count() == book.chunks_total
    assert len(curator.sent) == 1
    events = ReviewEvent.objects.filter(target_type="textbook", action="textbook.imported")
    assert events.count() == 1


def test_same_file_twice_is_one_book(curator, sample_book):
    path, _ = sample_book
    first = _upload(curator, path)
    second = _upload(curator, path, title="Other name")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert Textbook.objects.count() == 1
    assert len(curator.sent) == 1  # the duplicate starts nothing


BAD = [
    ("empty", bad_pdfs.write_empty, 400),
    ("not_pdf", bad_pdfs.write_not_pdf, 400),
    ("corrupt", bad_pdfs.write_truncated, 400),
    ("encrypted", bad_pdfs.write_encrypted, 400),
    ("no_pages", bad_pdfs.write_zero_pages, 400),
]


@pytest.mark.parametrize(("code", "writer", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_uploads_are_refused_and_change_nothing(
    curator, sample_book, tmp_path, code, writer, status
):
    good, _ = sample_book
    assert _upload(curator, good).status_code == 201
    before = (Textbook.objects.count(), ReviewEvent.objects.count(), _stored_books())
    bad = tmp_path / "book.pdf"
    writer(bad)
    response = _upload(curator, bad)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert (Textbook.objects.count(), ReviewEvent.objects.count(), _stored_books()) == before


def test_file_over_the_size_limit_is_refused_with_413(curator, sample_book, settings):
    path, _ = sample_book
    settings.UPLOAD_MAX_BYTES = path.stat().st_size - 1
    response = _upload(curator, path)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "upload limit" in response.json()["detail"]
    assert Textbook.objects.count() == 0 and _stored_books() == []


def test_book_over_the_page_limit_is_refused(curator, sample_book, settings):
    path, _ = sample_book
    settings.UPLOAD_MAX_PAGES = 3
    response = _upload(curator, path)
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_pages"
    assert "3" in response.json()["detail"]
    assert Textbook.objects.count() == 0


@pytest.mark.parametrize(
    "body", [{}, {"file": "not a file"}], ids=["missing-file", "string-instead-of-file"]
)
def test_malformed_upload_bodies_get_400(curator, body):
    response = curator.post("/api/textbooks/", body, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()
    assert Textbook.objects.count() == 0


def test_malformed_json_gets_400(curator, sample_book):
    path, _ = sample_book
    book_id = _upload(curator, path).json()["id"]
    response = curator.post(
        f"/api/textbooks/{book_id}/reingest/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_reingest_while_busy_is_a_conflict_unless_forced(curator, sample_book):
    path, _ = sample_book
    book_id = _upload(curator, path).json()["id"]
    busy = curator.post(f"/api/textbooks/{book_id}/reingest/", {}, format="json")
    assert busy.status_code == 409 and busy.json()["code"] == "busy"
    forced = curator.post(f"/api/textbooks/{book_id}/reingest/", {"force": True}, format="json")
    assert forced.status_code == 202 and forced.json()["ingest_run"] == 2
    assert len(curator.sent) == 2


def test_upload_that_mupdf_cannot_open_names_no_server_path(curator, tmp_path):
    response = _upload(curator, write_garbage_after_header(tmp_path / "book.pdf"))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "corrupt"
    assert body["detail"].startswith("The PDF is damaged and cannot be opened")
    assert "/" not in body["detail"] and "tmp" not in body["detail"]
    assert Textbook.objects.count() == 0 and _stored_books() == []


def test_forged_page_count_is_refused_without_counting_the_pages(curator, tmp_path):
    """The page tree claims two billion pages; the claim alone is past UPLOAD_MAX_PAGES."""
    response = _upload(curator, write_forged_page_count(tmp_path / "book.pdf", 2_000_000_000))
    assert response.status_code == 413, response.content
    body = response.json()
    assert body["code"] == "too_many_pages"
    assert "2,000,000,000" in body["detail"] and "3,000" in body["detail"]
    assert Textbook.objects.count() == 0 and _stored_books() == []


def test_forged_page_count_under_the_limit_is_refused_as_damaged(curator, tmp_path, settings):
    settings.UPLOAD_MAX_PAGES = 10_000_000_000
    response = _upload(curator, write_forged_page_count(tmp_path / "book.pdf", 2_000_000_000))
    assert response.status_code == 400
    assert response.json()["code"] == "corrupt"
    assert "page tree" in response.json()["detail"]
    # MuPDF accepts a small overstatement; the missing last page gives it away.
    response = _upload(curator, write_forged_page_count(tmp_path / "small.pdf", 5))
    assert response.status_code == 400
    assert response.json()["code"] == "corrupt"
    assert "page 5 cannot be found" in response.json()["detail"]
    assert Textbook.objects.count() == 0
