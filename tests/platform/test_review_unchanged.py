"""An extracted book, every pair accepted from its page with no change: all stay "accepted".

Before the sex contract the extractor wrote "F"/"M", the form offered female/male and showed
"unknown", and every unchanged accept of a caption naming the patient's sex saved an empty sex
and counted as an edit: the dashboard's "accepted" column read almost all 0.
"""

import pytest

from curation.models import Pair, Textbook
from curation.selectors.dashboard import progress
from curation.services import textbooks as textbook_service
from tests.platform.test_review_views import _Form


@pytest.fixture
def ingested(transactional_db, eager_celery, tmp_path, settings):
    from curation.samplebook import generate_book

    settings.DRAFT_ON_ACCEPT = False
    path = tmp_path / "atlas.pdf"
    gold = generate_book(path, chapters=1, pages_per_chapter=6, seed=3, unique_images=8)
    with open(path, "rb") as fh:
        book = textbook_service.import_textbook(fh, filename=path.name).textbook
    book.refresh_from_db()
    assert book.status == Textbook.Status.DONE, book.error
    return book, gold


def test_every_pair_accepted_unchanged_through_its_page_is_accepted(ingested, client, make_user):
    book, gold = ingested
    assert {f.sex for f in gold.figures} >= {"female", "male"}  # captions name both
    pairs = list(Pair.objects.filter(textbook=book))
    assert {p.sex for p in pairs} >= {"female", "male"}
    assert all(p.proposed["sex"] in (None, "female", "male") for p in pairs)
    before = {p.pk: {f: getattr(p, f) for f in ("text", "modality", "diagnosis", "age", "sex",
                                                 "flags")} for p in pairs}  # fmt: skip
    client.force_login(make_user("ann", "expert"))
    for pair in pairs:
        form = _Form(client.get(f"/review/pairs/{pair.pk}/").content.decode())
        assert (
            client.post(f"/review/pairs/{pair.pk}/", form.data(action="accept")).status_code == 302
        )
    after = {p.pk: p for p in Pair.objects.filter(textbook=book)}
    assert {p.status for p in after.values()} == {"accepted"}
    for pk, values in before.items():
        assert {f: getattr(after[pk], f) for f in values} == values
    # the dashboard counts them where the issue saw 0
    assert sum(r["accepted"] for r in progress() if r["book_id"] == book.pk) == len(pairs)
