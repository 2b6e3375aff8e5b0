"""Ingest with tasks run inline: results land once, re-runs change nothing twice."""

import pytest

from curation.models import Figure, IngestChunk, Pair, Panel, ReviewEvent, Textbook
from curation.samplebook import bad_pdfs
from curation.services import ingest as ingest_service
from curation.services import textbooks as textbook_service


def _import(path, **kwargs):
    with open(path, "rb") as fh:
        return textbook_service.import_textbook(fh, filename=path.name, **kwargs).textbook


def _gold_keys(gold):
    return sorted((f.label, f.page) for f in gold.figures)


def _db_keys(book):
    return sorted(Figure.objects.filter(textbook=book).values_list("label", "page__number"))


@pytest.fixture
def ingested(transactional_db, eager_celery, sample_book, settings):
    settings.INGEST_CHUNK_PAGES = 5
    path, gold = sample_book
    book = _import(path)
    book.refresh_from_db()
    return book, gold, path


def test_sample_book_is_ingested_with_every_gold_figure(ingested):
    book, gold, _ = ingested
    assert book.status == Textbook.Status.DONE, book.error
    assert book.pages_done == book.page_count
    assert book.chunks_done == book.chunks_total > 1
    assert _db_keys(book) == _gold_keys(gold)
    assert book.figures_found == len(gold.figures)
    expected_panels = sum(len(f.panels) for f in gold.figures)
    assert Panel.objects.filter(figure__textbook=book).count() == expected_panels
    assert Pair.objects.filter(textbook=book).count() == expected_panels
    pair = Pair.objects.filter(textbook=book).first()
    assert pair.status == "proposed" and pair.proposed["text"] == pair.text
    assert any(f.mentions for f in Figure.objects.filter(textbook=book))
    actions = list(
        ReviewEvent.objects.filter(target_type="textbook").values_list("action", flat=True)
    )
    assert actions == ["textbook.imported", "ingest.started", "ingest.completed"]


def test_rerunning_a_chunk_or_finalise_adds_nothing(ingested, sample_book):
    from curation import extract

    book, _gold, path = ingested
    counts = (Figure.objects.count(), Panel.objects.count(), Pair.objects.count())
    chunk = IngestChunk.objects.filter(textbook=book).first()
    result = extract.extract_chunk(path, chunk.first_page, chunk.last_page)
    assert not ingest_service.record_chunk(
        book.pk, book.ingest_run, chunk.first_page, chunk.last_page, result
    )
    # Even forced through the write path twice, the unique keys hold.
    from workers.ingest import finalize_ingest, ingest_chunk

    ingest_chunk(book.pk, book.ingest_run, chunk.first_page, chunk.last_page)
    finalize_ingest(book.pk, book.ingest_run)
    assert (Figure.objects.count(), Panel.objects.count(), Pair.objects.count()) == counts


def test_reingest_keeps_expert_decisions(ingested, make_user):
    book, gold, _ = ingested
    pair = Pair.objects.filter(textbook=book).order_by("id").first()
    pair.status = Pair.Status.EDITED
    pair.text = "Expert wording"
    pair.save()
    pair_ids = set(Pair.objects.values_list("id", flat=True))
    textbook_service.start_ingest(book.pk, make_user("cur", "curator"))
    book.refresh_from_db()
    assert book.status == Textbook.Status.DONE and book.ingest_run == 2
    pair.refresh_from_db()
    assert pair.status == Pair.Status.EDITED and pair.text == "Expert wording"
    assert set(Pair.objects.values_list("id", flat=True)) == pair_ids
    assert _db_keys(book) == _gold_keys(gold)


def test_stale_run_results_are_ignored(ingested):
    from curation import extract

    book, _, path = ingested
    result = extract.extract_chunk(path, 1, 3)
    assert not ingest_service.record_chunk(book.pk, book.ingest_run - 1, 1, 3, result)
    assert not ingest_service.fail_ingest(book.pk, book.ingest_run - 1, "late failure")
    book.refresh_from_db()
    assert book.status == Textbook.Status.DONE and not book.error


def test_broken_image_fails_the_book_with_a_message_and_leaves_others(
    transactional_db, eager_celery, sample_book, tmp_path
):
    good_path, gold = sample_book
    good = _import(good_path)
    broken_path = tmp_path / "broken.pdf"
    bad_pdfs.write_broken_image(broken_path)
    broken = _import(broken_path)
    broken.refresh_from_db()
    good.refresh_from_db()
    assert broken.status == Textbook.Status.FAILED
    assert "image" in broken.error.lower() and "page" in broken.error.lower()
    assert good.status == Textbook.Status.DONE
    assert Figure.objects.filter(textbook=good).count() == len(gold.figures)
    assert ReviewEvent.objects.filter(
        target_type="textbook", target_id=broken.pk, action="ingest.failed"
    ).exists()


def test_unexpected_crash_fails_the_book_not_the_worker(
    transactional_db, eager_celery, sample_book, monkeypatch
):
    def explode(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr("curation.extract.extract_chunk", explode)
    book = _import(sample_book[0])
    book.refresh_from_db()
    assert book.status == Textbook.Status.FAILED
    assert book.error.startswith("pages 1-") and "ran out of memory" in book.error


def test_reingest_keeps_manual_panel_fixes(ingested, make_user):
    from curation.services import panels as panel_service

    book, _, _ = ingested
    figure = Figure.objects.filter(textbook=book).order_by("id").first()
    panel = figure.panels.order_by("index").first()
    pair = panel.pair
    curator = make_user("cur", "curator")
    new_box = [panel.bbox[0] + 5, panel.bbox[1] + 5, panel.bbox[2] - 5, panel.bbox[3] - 5]
    panel_service.adjust_panels(
        figure.pk, curator, boxes={pair.pk: new_box}, versions={pair.pk: pair.version}
    )
    textbook_service.start_ingest(book.pk, curator)
    panel.refresh_from_db()
    assert panel.bbox == new_box
