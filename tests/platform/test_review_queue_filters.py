"""The review queue's filters (flag, doubtful) and order, its progress line, and the
extractor's confidence and doubts carried from ingest to the pair page."""

import io

import pytest

from curation.models import Pair, Textbook
from curation.services import review as svc
from tests.factories import make_book, make_pairs


@pytest.fixture
def book(db):
    return make_book()


@pytest.fixture
def ann(make_user):
    return make_user("ann", "expert")


def _set(pair, **values):
    Pair.objects.filter(pk=pair.pk).update(**values)


def test_flag_and_doubtful_filters_and_the_doubtful_first_order(book, ann, settings):
    settings.REVIEW_DOUBTFUL_BELOW = 0.6
    plain, face, low, doubted, sure = make_pairs(book, 5)
    _set(face, flags=["face", "poor_quality"], extract_confidence=0.9)
    _set(low, extract_confidence=0.3)
    _set(doubted, extract_confidence=0.95, extract_doubts=["caption far from the figure"])
    _set(sure, extract_confidence=0.99)

    claimed = svc.claim_next_id(ann, svc.QueueFilter(flag="face"))
    assert claimed == face.pk
    assert list(svc.queue(svc.QueueFilter(doubtful=True)).values_list("pk", flat=True)) == [
        low.pk,
        doubted.pk,
    ]
    assert list(svc.queue(svc.QueueFilter(order="doubtful")).values_list("pk", flat=True)) == [
        low.pk,  # doubtful, lowest confidence first
        doubted.pk,
        face.pk,  # then the rest by confidence, unknown counting as sure
        sure.pk,
        plain.pk,
    ]
    assert list(svc.queue(svc.QueueFilter(flag="poor_quality")).values_list("pk", flat=True)) == [
        face.pk
    ]


def test_the_picker_follows_the_filters_and_the_order(book, make_user, settings):
    settings.REVIEW_DOUBTFUL_BELOW = 0.6
    plain, face, low = make_pairs(book, 3)
    _set(face, flags=["face"])
    _set(low, extract_confidence=0.2)
    first = make_user("first", "expert")
    assert svc.claim_next_id(first, svc.QueueFilter(flag="face")) == face.pk
    second = make_user("second", "expert")
    assert svc.claim_next_id(second, svc.QueueFilter(doubtful=True)) == low.pk
    third = make_user("third", "expert")
    assert svc.claim_next_id(third, svc.QueueFilter(order="doubtful")) == plain.pk  # low held
    fourth = make_user("fourth", "expert")
    assert svc.claim_next_id(fourth, svc.QueueFilter(doubtful=True)) is None


def test_the_page_shows_progress_filters_and_the_extractors_doubts(client, book, ann):
    other = make_book(title="Other atlas")
    pairs = make_pairs(book, 3)
    make_pairs(other, 2)
    _set(pairs[1], extract_confidence=0.41, extract_doubts=["panel split guessed"])
    svc.review_pair(pairs[0].pk, ann, version=1, action="accept")
    client.force_login(ann)
    response = client.get(f"/review/next/?book={book.pk}")
    assert response["Location"] == f"/review/pairs/{pairs[1].pk}/?book={book.pk}"
    html = client.get(response["Location"]).content.decode()
    assert "<strong>1 / 3</strong> · 1 today" in html  # this book's pairs only
    assert f'<option value="{book.pk}" selected>' in html  # the dropdown shows the filter
    assert 'id="filter-confidence"' in html and 'id="filter-flag"' in html
    assert "extraction confidence 0.41" in html and "panel split guessed" in html
    everything = client.get(f"/review/pairs/{pairs[2].pk}/").content.decode()
    assert "<strong>1 / 5</strong> · 1 today" in everything
    assert "extraction confidence unknown" in everything
    doubtful = client.get("/review/next/?confidence=doubtful&order=doubtful")
    assert doubtful["Location"].startswith(f"/review/pairs/{pairs[1].pk}/")
    assert "confidence=doubtful" in doubtful["Location"]


def test_ingest_keeps_the_extractors_confidence_and_doubts(db, monkeypatch):
    from PIL import Image

    from curation.extract import ChunkResult, FigureInfo, PageInfo, PanelInfo
    from curation.models import IngestChunk
    from curation.services import ingest

    monkeypatch.setattr("curation.services.dispatch.enqueue_finalize", lambda *args: None)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 90)).save(buf, "PNG")
    png = buf.getvalue()
    book = make_book(pages=1)
    Textbook.objects.filter(pk=book.pk).update(status="processing", ingest_run=1, chunks_total=1)
    IngestChunk.objects.create(textbook=book, run=1, first_page=1, last_page=1)

    def figure(label, panels):
        return FigureInfo(
            label=label, page=1, bbox=(0, 0, 10, 10), caption=f"Fig. {label} x",
            caption_bbox=None, image_png=png, panels=panels, modality="clinical",
            modality_confidence=0.9, section=[], diagnosis="", age=None, sex=None,
        )  # fmt: skip

    def panel(index):
        return PanelInfo(index, "ab"[index], (0, 0, 10, 10), "", png, "clinical", 0.9)

    scored = figure("1.1", [panel(0), panel(1)])
    scored.confidence, scored.doubts = 0.7, ["caption below the page break"]
    scored.panels[1].confidence, scored.panels[1].doubts = 0.35, ["split at no gutter"]
    silent = figure("1.2", [panel(0)])  # nothing assessed: the model's defaults
    strange = figure("1.3", [panel(0)])
    strange.confidence, strange.doubts = "high", "not a list"
    result = ChunkResult(pages=[PageInfo(1, 595, 842, "", [])], figures=[scored, silent, strange],
                         orphans=[])  # fmt: skip
    assert ingest.record_chunk(book.pk, 1, 1, 1, result) is True
    rows = {
        (p.panel.figure.label, p.panel.index): (p.extract_confidence, p.extract_doubts)
        for p in Pair.objects.select_related("panel__figure")
    }
    assert rows[("1.1", 0)] == (0.7, ["caption below the page break"])
    assert rows[("1.1", 1)] == (0.35, ["caption below the page break", "split at no gutter"])
    # The extractor's model defaults every figure and panel to 1.0 with no doubts (its
    # confidence pass lowers them); a value that is no number is ignored, not stored.
    assert rows[("1.2", 0)] == (1.0, [])
    assert rows[("1.3", 0)] == (1.0, [])
