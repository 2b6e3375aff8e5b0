"""A failed book's message names the problem in words: no object reprs, no server paths."""

import pytest
from django.core.files.storage import default_storage

from curation.extract.errors import MAX_MESSAGE, PdfError, clean_text, describe_failure, on_page
from curation.models import ReviewEvent, Textbook
from curation.services import textbooks as textbook_service
from tests.forged_pdfs import write_garbage_after_header, write_oversized_image

SWIG_REPR = (
    "<pymupdf.mupdf.FzErrorLimit; proxy of <Swig Object of type 'mupdf::FzErrorLimit *' "
    "at 0x7f82ce1c64f0> >"
)


def _import(path):
    with open(path, "rb") as fh:
        return textbook_service.import_textbook(fh, filename=path.name).textbook


def _assert_readable(message: str) -> None:
    assert message and len(message) <= MAX_MESSAGE
    for leak in ("<", "Swig", "proxy of", "0x", "/tmp", "/var", "\\"):
        assert leak not in message, message


@pytest.mark.parametrize(
    "text",
    [
        "Failed to open file '/srv/mmskin/var/tmp/tmpq8x2.pdf' as type pdf.",
        'cannot open "/home/curator/books/atlas.pdf": No such file',
        r"cannot open C:\Users\curator\atlas.pdf: No such file",
        "cannot read media/books/ab/ab12.pdf now",
        f"{SWIG_REPR} code=5: Overly large image",
    ],
)
def test_paths_and_object_reprs_are_removed(text):
    cleaned = clean_text(text)
    _assert_readable(cleaned)
    assert "tmpq8x2" not in cleaned and "atlas" not in cleaned and "ab12" not in cleaned
    assert cleaned  # the words around them stay


def test_words_with_slashes_are_not_paths():
    assert clean_text("1/2 of the page and/or its image") == "1/2 of the page and/or its image"


def test_message_is_bounded():
    message = describe_failure(ValueError("x" * 10_000), pages=(1, 20))
    assert len(message) <= MAX_MESSAGE and "…" in message


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError("code=5: Overly large image"), "pages 3-4: image too large to decode"),
        (RuntimeError("code=7: object out of range"), "pages 3-4: the file is damaged: object"),
        (RuntimeError("code=1: needs a password"), "pages 3-4: the PDF is encrypted"),
        (MemoryError(), "pages 3-4: ran out of memory"),
        (FileNotFoundError(2, "No such file or directory", "/srv/x.pdf"), "pages 3-4: the"),
    ],
)
def test_mupdf_error_classes_in_words(exc, expected):
    message = describe_failure(exc, pages=(3, 4))
    assert message.startswith(expected), message
    _assert_readable(message)


def test_the_page_an_exception_was_raised_on_wins_over_the_chunk_range():
    with pytest.raises(RuntimeError) as caught, on_page(12):
        raise RuntimeError("code=5: Overly large image")
    assert describe_failure(caught.value, pages=(1, 20)) == "page 12: image too large to decode"


def test_pdf_errors_keep_their_own_sentence():
    exc = PdfError("encrypted", "The PDF is password-protected; upload a copy without one.")
    assert describe_failure(exc, pages=(1, 5)) == exc.message


def test_oversized_image_fails_the_book_naming_page_and_problem(
    transactional_db, eager_celery, tmp_path, settings
):
    """A real MuPDF FzErrorLimit, through upload, the chunk task and the ingest service."""
    settings.INGEST_CHUNK_PAGES = 2
    book = _import(write_oversized_image(tmp_path / "huge.pdf", page_count=3, on_page=3))
    book.refresh_from_db()
    assert book.status == Textbook.Status.FAILED
    assert book.error == "page 3: image too large to decode"
    event = ReviewEvent.objects.get(target_id=book.pk, action="ingest.failed")
    assert event.after["error"] == book.error


def test_stored_file_damaged_after_upload_fails_without_a_path(
    transactional_db, eager_celery, tmp_path, settings, sample_book, monkeypatch
):
    """The worker's copy is unreadable: MuPDF's message names the file; ours must not."""
    monkeypatch.setattr("curation.services.dispatch.enqueue_ingest", lambda *args: None)
    book = _import(sample_book[0])
    garbage = write_garbage_after_header(tmp_path / "garbage.pdf").read_bytes()
    with default_storage.open(book.file, "wb") as fh:
        fh.write(garbage)
    from workers.ingest import ingest_chunk

    chunk = book.chunks.first()
    ingest_chunk(book.pk, book.ingest_run, chunk.first_page, chunk.last_page)
    book.refresh_from_db()
    assert book.status == Textbook.Status.FAILED
    assert book.error.startswith("The PDF is damaged and cannot be opened"), book.error
    _assert_readable(book.error)
    assert book.sha256 not in book.error


def test_unexpected_crash_names_the_pages_and_the_error_type(
    transactional_db, eager_celery, sample_book, monkeypatch, settings
):
    settings.INGEST_CHUNK_PAGES = 5

    def explode(*args, **kwargs):
        raise RuntimeError(f"simulated at {sample_book[0]}")

    monkeypatch.setattr("curation.extract.extract_chunk", explode)
    book = _import(sample_book[0])
    book.refresh_from_db()
    assert book.status == Textbook.Status.FAILED
    assert book.error == "pages 1-5: unexpected RuntimeError (simulated at)"
