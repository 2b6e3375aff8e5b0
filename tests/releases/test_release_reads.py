"""The build reads the selection once, whatever its size (keyset pages made it quadratic)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.selectors import releases as select
from curation.services.releases import normalize_filter


def _read(spec: dict, chunk_size: int) -> tuple[list, int]:
    with CaptureQueriesContext(connection) as queries:
        records = list(select.iter_pair_records(spec, chunk_size=chunk_size))
    return records, len(queries)


def test_pair_records_come_from_two_streamed_reads_and_one_per_book(world):
    spec = normalize_filter({})
    records, small_chunks = _read(spec, chunk_size=2)
    _, one_chunk = _read(spec, chunk_size=10_000)
    assert len(records) > 10
    # One read of the pairs, one of their VQA items, one per book: never one per page.
    assert small_chunks == one_chunk == 2 + len({r.book.id for r in records})


def test_each_pair_gets_exactly_its_shipped_vqa_items_in_id_order(world):
    from curation.models import VQAItem

    records, _ = _read(normalize_filter({}), chunk_size=3)
    assert [r.id for r in records] == sorted(r.id for r in records)
    shipped = VQAItem.objects.filter(status__in=select.VQA_SHIPPED)
    for record in records:
        wanted = list(shipped.filter(pair_id=record.id).order_by("id").values_list("id", flat=True))
        assert [q.id for q in record.vqa] == wanted
        assert all(q.pair_id == record.id for q in record.vqa)
    first = records[0]  # the world's first pair: accepted, edited and two rejected items
    assert [q.status for q in first.vqa] == ["accepted", "edited", "rejected", "rejected"]
    assert first.vqa[1].draft_answer == "Eczema"


def test_a_filter_that_skips_pairs_keeps_the_join_aligned(world):
    records, _ = _read(normalize_filter({"modalities": ["dermoscopic"]}), chunk_size=2)
    assert records and all(r.modality == "dermoscopic" for r in records)
    for record in records:
        assert all(q.pair_id == record.id for q in record.vqa)
