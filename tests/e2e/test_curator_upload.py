"""A curator uploads in the browser and watches the book being processed, live."""

import pytest

from curation.models import Textbook
from curation.samplebook import bad_pdfs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bad_upload_shows_the_problem(login, tmp_path, transactional_db):
    page = login("cura", "curator")
    bad = tmp_path / "scan.pdf"
    bad_pdfs.write_encrypted(bad)
    page.set_input_files("#id_file", str(bad))
    page.click("#upload-form button[type=submit]")
    alert = page.locator("[role=alert]")
    assert "password" in alert.inner_text().lower()
    assert alert.get_attribute("data-code") == "encrypted"
    assert Textbook.objects.count() == 0


def test_upload_then_watch_progress_until_figures_appear(
    login, celery_worker_factory, sample_book, settings
):
    settings.INGEST_CHUNK_PAGES = 2
    path, gold = sample_book
    celery_worker_factory()
    page = login("cura", "curator")
    page.fill("#id_title", "Browser Atlas")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/books/*/")
    assert page.locator("h1").inner_text() == "Browser Atlas"
    seen = set()
    page.on(
        "response",
        lambda r: seen.add("poll") if "/progress/" in r.url else None,
    )
    page.wait_for_selector("#progress[data-status=done]", timeout=120_000)
    assert "poll" in seen, "the progress fragment was never polled"
    assert page.locator("#figures figure").count() == len(gold.figures)
    assert page.locator("#figures-found").inner_text() == str(len(gold.figures))
    first = page.locator("#figures img").first
    first.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=first.element_handle()
    )
