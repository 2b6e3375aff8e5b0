"""Near-duplicate pictures on the platform: stored at ingest, shown on the review page,
settled by an expert's verdict (audited), counted on the dashboard; works and editions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.template import Context, Template

from curation.models import CropImage, DuplicateVerdict, ReviewEvent, Textbook
from curation.samplebook import images as drawn
from curation.selectors import duplicates as select
from curation.services import duplicates
from curation.services.errors import ServiceError
from curation.services.storage import store_bytes
from tests.factories import make_book, make_pairs


def _crop(seed: int, scale: float = 1.0, marks: bool = False) -> bytes:
    img = drawn.draw("clinical", np.random.default_rng(seed), 360, 270)
    if marks:
        img = drawn.burn_marks(img, np.random.default_rng(seed + 1))
    if scale != 1.0:
        img = img.resize((int(360 * scale), int(270 * scale)))
    buf = io.BytesIO()
    img.save(buf, "JPEG" if scale != 1.0 else "PNG", quality=75)
    return buf.getvalue()


def _with_crop(pair, data: bytes):
    pair.panel.image = store_bytes(data, prefix="crops", ext="png")
    pair.panel.save()
    return pair


@pytest.fixture
def shelf(db):
    """Book A p.1 holds a picture; book B p.3 a resized, marked copy; B p.1 another picture."""
    a, b = make_book("Atlas A", pages=3), make_book("Atlas B", pages=3)
    (pa,) = make_pairs(a, 1)
    pb_other, _, pb_copy = make_pairs(b, 3)
    _with_crop(pa, _crop(1))
    _with_crop(pb_copy, _crop(1, scale=0.7, marks=True))
    _with_crop(pb_other, _crop(2))
    for book in (a, b):
        duplicates.index_textbook(book.pk)
    return {"a": a, "b": b, "original": pa, "copy": pb_copy, "other": pb_other}


def test_ingest_stores_descriptors_and_one_cluster_across_books(shelf):
    assert CropImage.objects.count() == 3
    by_image = dict(CropImage.objects.values_list("image", "cluster"))
    assert by_image[shelf["original"].panel.image] == by_image[shelf["copy"].panel.image] != ""
    assert by_image[shelf["other"].panel.image] == ""


def test_finalize_ingest_indexes_the_book(db, monkeypatch):
    from curation.extract import LinkResult
    from curation.services import ingest

    book = make_book("Atlas", pages=2)
    book.status, book.chunks_total, book.chunks_done = Textbook.Status.PROCESSING, 1, 1
    book.save()
    (pair,) = make_pairs(book, 1)
    _with_crop(pair, _crop(5))
    assert ingest.finalize_ingest(book.pk, book.ingest_run, LinkResult(figures=[], mentions={}))
    assert CropImage.objects.filter(image=pair.panel.image).exists()


def test_the_review_page_partial_says_where_else_the_picture_appears(shelf):
    html = Template("{% load duplicates %}{% pair_duplicates pair %}").render(
        Context({"pair": shelf["original"], "csrf_token": "tok"})
    )
    assert "This picture also appears in" in html
    assert "book <strong>Atlas B</strong>, p. 3" in html
    assert 'value="different"' in html and 'value="same"' in html
    assert "Atlas B</strong>, p. 1" not in html  # the different picture is not listed


def test_different_splits_the_link_for_good_and_is_audited(shelf, make_user):
    expert = make_user("ex", "expert")
    duplicates.record_verdict(shelf["original"], shelf["copy"], "different", expert)
    assert select.also_appears(shelf["original"]) == []
    assert set(CropImage.objects.values_list("cluster", flat=True)) == {""}
    duplicates.recluster()  # the next book's ingest does not undo the verdict
    assert select.also_appears(shelf["original"]) == []
    event = ReviewEvent.objects.get(action="duplicate.verdict", target_id=shelf["original"].pk)
    assert event.actor == expert
    assert event.after["verdict"] == "different" and event.before["clusters"]


def test_same_joins_two_crops_the_hashes_kept_apart(shelf, make_user):
    expert = make_user("ex", "expert")
    duplicates.record_verdict(shelf["original"], shelf["other"], "same", expert)
    rows = select.also_appears(shelf["original"])
    assert {r["pair_id"] for r in rows} == {shelf["copy"].pk, shelf["other"].pk}
    assert next(r for r in rows if r["pair_id"] == shelf["other"].pk)["verdict"] == "same"


def test_identical_files_are_always_the_same_picture(shelf, make_user):
    (twin,) = make_pairs(shelf["a"], 1)
    twin.panel.image = shelf["original"].panel.image
    twin.panel.save()
    rows = select.also_appears(twin)
    assert any(r["identical"] and r["pair_id"] == shelf["original"].pk for r in rows)
    with pytest.raises(ServiceError, match="byte-identical"):
        duplicates.record_verdict(twin, shelf["original"], "different", make_user("ex", "expert"))
    with pytest.raises(ServiceError):
        duplicates.record_verdict(twin, shelf["copy"], "maybe", make_user("ex2", "expert"))


def test_verdict_view_records_and_redirects(shelf, client, make_user):
    client.force_login(make_user("ex", "expert"))
    pair = shelf["original"]
    response = client.post(
        f"/review/pairs/{pair.pk}/duplicates/", {"other": shelf["copy"].pk, "verdict": "different"}
    )
    assert response.status_code == 303 and response["Location"] == f"/review/pairs/{pair.pk}/"
    assert DuplicateVerdict.objects.get().verdict == "different"
    assert client.post(f"/review/pairs/{pair.pk}/duplicates/", {"other": "x"}).status_code == 303
    assert DuplicateVerdict.objects.count() == 1


def test_dashboard_counts_clusters(shelf):
    counts = select.cluster_counts()
    assert counts["clusters"] == 1 and counts["clustered_crops"] == 2 and counts["described"] == 3
    html = Template("{% load duplicates %}{% duplicate_clusters %}").render(Context({}))
    assert '<strong id="cluster-count">1</strong> near-duplicate cluster' in html


def test_dedupe_command_catches_up(shelf):
    CropImage.objects.all().delete()
    out = io.StringIO()
    call_command("dedupe", stdout=out)
    assert "described 3 new crops" in out.getvalue() and "1 clusters" in out.getvalue()


def _stored() -> dict[str, tuple[str, str | None]]:
    return {im: (cl, co) for im, cl, co in CropImage.objects.values_list(
        "image", "cluster", "component")}  # fmt: skip


def test_a_new_book_clusters_only_its_crops_and_what_they_reach(shelf):
    """Incremental: an unrelated book touches nothing else; a copy of B's other picture
    reclusters only that picture's component; either way the result is the global one."""
    c = make_book("Atlas C", pages=2)
    for pair, seed in zip(make_pairs(c, 2), (7, 8), strict=True):
        _with_crop(pair, _crop(seed))
    counts = duplicates.index_textbook(c.pk)
    assert (counts["added"], counts["reclustered"], counts["crops"]) == (2, 2, 5)

    d = make_book("Atlas D", pages=1)
    (copy,) = make_pairs(d, 1)
    _with_crop(copy, _crop(2, scale=0.8))
    counts = duplicates.index_textbook(d.pk)
    assert (counts["added"], counts["reclustered"], counts["crops"]) == (1, 2, 6)
    stored = _stored()
    assert stored[copy.panel.image][0] == stored[shelf["other"].panel.image][0] != ""
    assert None not in {co for _cl, co in stored.values()}

    full = duplicates.recluster(everything=True)
    assert full["reclustered"] == 6 and full["changed"] == 0
    assert _stored() == stored


def test_crops_clustered_before_components_existed_are_caught_up(shelf):
    before = _stored()
    CropImage.objects.update(component=None)  # as the migration leaves them
    counts = duplicates.recluster()
    assert counts["reclustered"] == 3
    assert _stored() == before


def test_a_verdict_then_a_new_book_equals_clustering_everything(shelf, make_user):
    duplicates.record_verdict(
        shelf["original"], shelf["copy"], "different", make_user("e", "expert")
    )
    c = make_book("Atlas C", pages=1)
    (again,) = make_pairs(c, 1)
    _with_crop(again, _crop(1, scale=0.6))  # a third copy of the split picture
    duplicates.index_textbook(c.pk)
    stored = _stored()
    assert duplicates.recluster(everything=True)["changed"] == 0
    assert _stored() == stored
    assert stored[shelf["original"].panel.image][0] != stored[shelf["copy"].panel.image][0]


# -- works and editions --------------------------------------------------------------------
def test_suggestion_matches_title_and_authors_across_editions(db):
    from curation.selectors.works import suggest_work

    first = make_book("Clinical Dermatology, 5th edition")
    first.authors = "Habif, T.P."
    first.save()
    second = make_book("Clinical dermatology (Sixth Edition)")
    second.authors = "T. P. Habif; J. Dinulos"
    second.save()
    other = make_book("Clinical Dermatology")
    other.authors = "Someone Else"
    other.save()
    suggestion = suggest_work(second)
    assert suggestion is not None and suggestion.work is None
    assert [b.pk for b in suggestion.books] == [first.pk]
    assert suggestion.title.lower().startswith("clinical dermatology")


def test_curator_sets_the_work_on_the_book_page(db, client, make_user):
    from curation.selectors.works import suggest_work

    first, second = make_book("Atlas of Skin, 2nd ed."), make_book("Atlas of Skin 3rd edition")
    curator = make_user("cur", "curator")
    client.force_login(curator)
    page = client.get(f"/books/{second.pk}/").content.decode()
    assert 'id="work-suggestion"' in page and "start the work" in page
    client.post(f"/books/{first.pk}/work/", {"work": "", "title": "Atlas of Skin"})
    first.refresh_from_db()
    assert first.work.title == "Atlas of Skin"
    assert suggest_work(second).work == first.work  # now: join the existing work
    client.post(f"/books/{second.pk}/work/", {"work": str(first.work_id)})
    second.refresh_from_db()
    assert second.work_id == first.work_id
    event = ReviewEvent.objects.filter(action="textbook.work_set", target_id=second.pk).get()
    assert event.before == {"work": None} and event.after["work"] == first.work_id
    client.force_login(make_user("ex", "expert"))
    assert client.post(f"/books/{second.pk}/work/", {"work": ""}).status_code == 403


def test_a_verdict_given_while_clustering_runs_is_not_overwritten(shelf, make_user, monkeypatch):
    """The clustering runs outside the lock; its write notices the new verdict and redoes it."""
    from curation import dedupe

    expert = make_user("ex", "expert")
    real = dedupe.update
    calls = []

    def slow_update(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # an expert answers while the first clustering computes
            a, b = sorted((shelf["original"].panel.image, shelf["copy"].panel.image))
            DuplicateVerdict.objects.create(
                image_a=a, image_b=b, verdict="different", expert=expert
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(duplicates.dedupe, "update", slow_update)
    duplicates.recluster()
    assert len(calls) == 2
    assert set(CropImage.objects.values_list("cluster", flat=True)) == {""}
