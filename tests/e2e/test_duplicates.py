"""An expert sees where else a picture appears and splits a false link with "different"."""

import pytest

from curation.models import DuplicateVerdict, ReviewEvent
from curation.services import duplicates
from tests.factories import make_book, make_pairs
from tests.platform.test_duplicates import _crop, _with_crop

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def linked(transactional_db):
    a, b = make_book("Atlas A", pages=3), make_book("Atlas B", pages=3)
    (original,) = make_pairs(a, 1)
    _, _, copy = make_pairs(b, 3)
    _with_crop(original, _crop(1))
    _with_crop(copy, _crop(1, scale=0.7, marks=True))
    for book in (a, b):
        duplicates.index_textbook(book.pk)
    return original, copy


def test_expert_marks_a_near_duplicate_as_different(login, page, linked, live_server):
    original, copy = linked
    login("ann", "expert")
    page.goto(f"{live_server.url}/review/pairs/{original.pk}/")
    row = page.locator(f'#duplicates li[data-pair="{copy.pk}"]')
    assert "book Atlas B, p. 3" in " ".join(row.inner_text().split())
    row.locator("button.dup-different").click()
    page.wait_for_load_state("load")
    assert page.locator("#duplicates").count() == 0
    assert DuplicateVerdict.objects.get().verdict == "different"
    assert ReviewEvent.objects.filter(action="duplicate.verdict", target_id=original.pk).exists()
