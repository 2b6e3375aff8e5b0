"""Review flags found by the extractor reach the proposal an expert sees, panel by panel."""

import pytest

from curation.models import Figure, Flag, Pair, Textbook
from curation.services import textbooks as textbook_service


@pytest.fixture
def ingested(transactional_db, eager_celery, tmp_path, settings):
    from curation.samplebook import generate_book

    settings.INGEST_CHUNK_PAGES = 10
    path = tmp_path / "flags-atlas.pdf"
    # This seed draws a face, vector-drawn and burned-in marks, and many clean pictures.
    gold = generate_book(path, chapters=2, pages_per_chapter=6, seed=0, unique_images=8)
    with open(path, "rb") as fh:
        book = textbook_service.import_textbook(fh, filename=path.name).textbook
    book.refresh_from_db()
    return book, gold


def test_face_and_mark_flags_reach_each_panels_pair(ingested):
    book, gold = ingested
    assert book.status == Textbook.Status.DONE, book.error
    wanted = {
        (g.label, g.page, i): sorted(p.flags) for g in gold.figures for i, p in enumerate(g.panels)
    }
    assert any("face" in v for v in wanted.values())
    assert any("annotation_marks" in v for v in wanted.values())
    got = {
        (p.panel.figure.label, p.panel.figure.page.number, p.panel.index): p
        for p in Pair.objects.filter(textbook=book).select_related("panel__figure__page")
    }
    assert set(got) == set(wanted)
    for key, flags in wanted.items():
        pair = got[key]
        assert pair.flags == flags, key
        assert pair.proposed["flags"] == flags, key
        assert set(pair.flags) <= set(Flag.values)
    # The extractor's own notes stay on the figure, not on the pair an expert accepts.
    notes = [f for f in Figure.objects.filter(textbook=book) if set(f.flags) - set(Flag.values)]
    assert notes
    for figure in notes:
        for pair in Pair.objects.filter(panel__figure=figure):
            assert not set(pair.flags) - set(Flag.values)
