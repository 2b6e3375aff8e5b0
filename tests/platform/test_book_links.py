"""Book pages lead to the work: rows to the book's review queue (by modality on the book's
page), figure cards to the panel editor."""

import re

from curation.services import review as svc
from tests.factories import make_book, make_pairs


def test_book_list_rows_link_to_the_books_queue(client, make_user, db):
    atlas, done = make_book("Atlas"), make_book("Done atlas")
    make_pairs(atlas, 3)
    (pair,) = make_pairs(done, 1)
    expert = make_user("ann", "expert")
    svc.review_pair(pair.pk, expert, version=pair.version, action="accept")
    client.force_login(expert)
    html = client.get("/books/").content.decode()
    row = re.search(rf'<tr data-book="{atlas.pk}">.*?</tr>', html, re.S).group(0)
    assert f'href="/review/next/?book={atlas.pk}"' in row and "review 3" in row
    finished = re.search(rf'<tr data-book="{done.pk}">.*?</tr>', html, re.S).group(0)
    assert "/review/next/" not in finished  # nothing left to review there


def test_book_page_links_modalities_to_the_queue_and_figures_to_the_editor(client, make_user, db):
    book = make_book("Atlas")
    clinical = make_pairs(book, 2)
    make_pairs(book, 1, modality="dermoscopic")
    client.force_login(make_user("ann", "expert"))
    html = client.get(f"/books/{book.pk}/").content.decode()
    assert 'id="review-book" class="queue-link">' in html
    assert f'href="/review/next/?book={book.pk}"' in html
    assert f'href="/review/next/?book={book.pk}&amp;modality=dermoscopic"' in html
    figure = clinical[0].panel.figure
    card = re.search(rf'<figure [^>]*data-figure="{figure.pk}">.*?</figure>', html, re.S).group(0)
    assert card.count(f'href="/review/figures/{figure.pk}/panels/"') == 2
    assert client.get(f"/review/figures/{figure.pk}/panels/").status_code == 200
    # The queue link gives a pair of that book and modality.
    response = client.get(f"/review/next/?book={book.pk}&modality=dermoscopic")
    assert response.status_code == 302 and "/review/pairs/" in response["Location"]
