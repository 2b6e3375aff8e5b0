from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from curation.extract import PdfError, extract_chunk, inspect_pdf
from curation.samplebook import bad_pdfs


@pytest.mark.parametrize(
    ("writer", "code"),
    [
        (bad_pdfs.write_empty, "empty"),
        (bad_pdfs.write_not_pdf, "not_pdf"),
        (lambda p: bad_pdfs.write_not_pdf(p, kind="random"), "not_pdf"),
        (bad_pdfs.write_truncated, "corrupt"),
        (bad_pdfs.write_encrypted, "encrypted"),
        (bad_pdfs.write_zero_pages, "no_pages"),
    ],
)
def test_inspect_rejects_bad_upload(tmp_path, writer, code):
    path = tmp_path / "bad.pdf"
    writer(path)
    with pytest.raises(PdfError) as exc:
        inspect_pdf(path)
    assert exc.value.code == code
    assert exc.value.message and "\n" not in exc.value.message


def test_too_many_pages(sample_book):
    path, gold = sample_book
    assert inspect_pdf(path, max_pages=gold.page_count).page_count == gold.page_count
    with pytest.raises(PdfError) as exc:
        inspect_pdf(path, max_pages=5)
    assert exc.value.code == "too_many_pages"


def test_broken_image_passes_inspection_but_fails_extraction(tmp_path):
    path = bad_pdfs.write_broken_image(tmp_path / "broken.pdf")
    info = inspect_pdf(path)
    assert info.page_count == 2
    assert extract_chunk(path, 1, 1).figures == []  # the damaged image is on page 2
    with pytest.raises(PdfError) as exc:
        extract_chunk(path, 1, 2)
    assert exc.value.code == "broken_image"
    assert exc.value.message.startswith("page 2:")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(PdfError):
        inspect_pdf(tmp_path / "nope.pdf")


def test_scanned_book_is_flagged(tmp_path):
    doc = pymupdf.open()
    for _ in range(3):
        page = doc.new_page()
        buf = io.BytesIO()
        Image.new("L", (200, 280), 235).save(buf, "PNG")
        page.insert_image(page.rect, stream=buf.getvalue())
    doc.save(tmp_path / "scan.pdf")
    assert inspect_pdf(tmp_path / "scan.pdf").likely_scanned
    assert extract_chunk(tmp_path / "scan.pdf", 1, 3).figures == []
