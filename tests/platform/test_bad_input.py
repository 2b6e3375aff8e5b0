"""Bad input gets a 4xx naming the problem, never a 500, and changes nothing stored.

Each case here was a 500 on Postgres: a non-numeric or huge id, a Range header of thousands of
digits, JSON nested past Python's recursion limit, NUL or lone surrogates bound for text/jsonb,
and a folder asked for as a file.
"""

from __future__ import annotations

import json

import pymupdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from curation.models import Claim, Pair, Textbook, TrainingRun
from tests.factories import make_book, make_pairs
from tests.releases.conftest import cut, world  # noqa: F401  (release fixtures)

HUGE = "9" * 30  # past bigint, and past what Postgres casts without overflow


def _no_raise(client):
    """Let a crash come back as the 500 a real client would see, so the assertion names it."""
    client.raise_request_exception = False
    return client


@pytest.fixture
def staff(api_client_for):
    return _no_raise(api_client_for("curator", "expert", "ml_worker", username="boss"))


@pytest.fixture
def pair(db):
    return make_pairs(make_book(), 1)[0]


@pytest.fixture
def web(client, make_user):
    client.force_login(make_user("web-boss", "curator", "expert"))
    return _no_raise(client)


@pytest.fixture
def ready(cut):  # noqa: F811
    return cut()


# -- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", ["abc", "1.5", "-1", "1e3", HUGE])
@pytest.mark.parametrize(
    "method, url, body",
    [
        ("post", "/api/pairs/{}/review/", {"version": 1, "action": "accept"}),
        ("post", "/api/pairs/{}/skip/", None),
        ("post", "/api/pairs/{}/revert/", {"version": 1, "event": 1}),
        ("post", "/api/vqa-items/{}/review/", {"version": 1, "action": "accept"}),
        ("patch", "/api/training-runs/{}/", {"progress": 0.5}),
        ("get", "/api/releases/{}/files/pairs.jsonl", None),
    ],
)
def test_a_malformed_id_in_an_api_url_is_404(staff, pair, bad_id, method, url, body):
    response = getattr(staff, method)(url.format(bad_id), body, format="json")
    assert response.status_code == 404, response.content


def test_a_huge_id_in_a_page_url_is_404_and_leases_nothing(web, pair):
    response = web.post(f"/review/pairs/{HUGE}/renew/")
    assert response.status_code == 404
    assert not Claim.objects.exists()
    assert web.get(f"/review/pairs/{HUGE}/").status_code == 404


def test_renewing_the_lease_of_a_missing_pair_is_404_and_leases_nothing(web, pair):
    assert web.post(f"/review/pairs/{pair.pk + 10**17}/renew/").status_code == 404
    assert not Claim.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"version": 1, "event": int(HUGE)},
        {"version": int(HUGE), "event": 1},
        {"version": "abc", "event": "1"},
    ],
)
def test_ids_in_a_body_are_refused_cleanly(staff, pair, body):
    response = staff.post(f"/api/pairs/{pair.pk}/revert/", body, format="json")
    assert 400 <= response.status_code < 500, response.content
    pair.refresh_from_db()
    assert pair.version == 1


@pytest.mark.parametrize("big", [int(HUGE), 2**63, 10**18])
@pytest.mark.parametrize(
    "url,body",
    [
        ("/api/pairs/draft/", lambda big, pk: {"pairs": [big]}),
        ("/api/pairs/claim-next/", lambda big, pk: {"textbook": big}),
        ("/api/pairs/{pk}/review/", lambda big, pk: {"version": big, "action": "accept"}),
        (
            "/api/vqa-items/",
            lambda big, pk: {"pair": big, "question_type": "x", "question": "q?", "answer": "a"},
        ),
        ("/api/releases/", lambda big, pk: {"name": "r", "version": "1.0.0", "seed": big}),
        ("/api/releases/", lambda big, pk: {"name": "r", "version": "1.0.0", "books": [big]}),
    ],
)
def test_numbers_past_a_column_in_a_body_are_400_not_an_overflow(staff, pair, url, body, big):
    """schemathesis found POST /api/pairs/draft/ with an id past int64: SQLite's OverflowError."""
    response = staff.post(url.format(pk=pair.pk), body(big, pair.pk), format="json")
    assert response.status_code == 400, (url, response.status_code, response.content[:300])
    pair.refresh_from_db()
    assert pair.version == 1 and pair.status == "proposed"


# -- Range -------------------------------------------------------------------------------------
def test_ranges_of_thousands_of_digits_are_answered_per_rfc_9110(ready, staff):
    many = "9" * 5000
    for url in (
        f"/api/releases/{ready.pk}/archive/",
        f"/api/releases/{ready.pk}/manifest/",
        f"/api/releases/{ready.pk}/files/pairs.jsonl",
    ):
        whole = b"".join(staff.get(url).streaming_content)
        beyond = staff.get(url, HTTP_RANGE=f"bytes={many}-")
        assert beyond.status_code == 416, url
        assert beyond["Content-Range"] == f"bytes */{len(whole)}"
        to_end = staff.get(url, HTTP_RANGE=f"bytes=2-{many}")
        assert to_end.status_code == 206, url
        assert b"".join(to_end.streaming_content) == whole[2:]
        suffix = staff.get(url, HTTP_RANGE=f"bytes=-{many}")
        assert b"".join(suffix.streaming_content) == whole, url
        padded = staff.get(url, HTTP_RANGE=f"bytes={'0' * 5000}3-{'0' * 5000}5")
        assert padded.status_code == 206 and b"".join(padded.streaming_content) == whole[3:6]


# -- JSON depth and size -------------------------------------------------------------------
def test_json_nested_past_the_recursion_limit_is_400(staff, db):
    deep = "[" * 100_000 + "]" * 100_000
    response = staff.post("/api/pairs/claim-next/", deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_json_nested_deeper_than_any_body_is_400_and_stores_nothing(ready, staff):
    config = "[" * 500 + "]" * 500
    body = f'{{"release": {ready.pk}, "stage": "sft", "config": {config}}}'
    response = staff.post("/api/training-runs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]
    assert not TrainingRun.objects.exists()


def test_a_json_body_over_the_size_limit_is_413(staff, pair, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"version": 1, "action": "accept", "note": "x" * 2000})
    response = staff.post(f"/api/pairs/{pair.pk}/review/", body, content_type="application/json")
    assert response.status_code == 413
    pair.refresh_from_db()
    assert pair.status == Pair.Status.PROPOSED


# -- NUL, surrogates, non-finite numbers --------------------------------------------------
@pytest.fixture
def run(ready, staff):
    created = staff.post(
        "/api/training-runs/",
        {"release": ready.pk, "stage": "sft", "config": {"train": {"lr": 1e-4}}},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    return TrainingRun.objects.get(pk=created.json()["id"])


@pytest.mark.parametrize(
    "body",
    [
        '{"metrics": {"loss": "x\\u0000"}}',
        '{"metrics": {"lo\\u0000ss": 0.5}}',
        '{"metrics": {"loss": "\\ud800"}}',
        '{"metrics": {"loss": [1e999]}}',
        '{"error": "out of memory\\u0000"}',
    ],
)
def test_unstorable_text_in_training_metrics_is_400(run, staff, body):
    response = staff.patch(f"/api/training-runs/{run.pk}/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    run.refresh_from_db()
    assert run.metrics == {} and run.error == ""


def test_nul_in_a_training_config_is_400(ready, staff):
    body = {"release": ready.pk, "stage": "sft", "config": {"base": "llava\u0000"}}
    response = staff.post("/api/training-runs/", body, format="json")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_nul_in_an_api_query_string_is_400(staff, db):
    for url in ("/api/releases/?name=%00", "/api/figures/?label=a%00"):
        response = staff.get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["detail"]


def test_nul_in_an_api_form_post_is_400(staff, pair):
    body = {"version": "1", "action": "accept", "note": "ok", "reason": "a\u0000"}
    response = staff.post(f"/api/pairs/{pair.pk}/review/", body, format="multipart")
    assert response.status_code == 400
    pair.refresh_from_db()
    assert pair.status == Pair.Status.PROPOSED


def test_nul_in_a_review_form_is_400_and_nothing_changes(web, pair):
    response = web.post(
        f"/review/pairs/{pair.pk}/", {"version": "1", "action": "accept", "text": "a\u0000b"}
    )
    assert response.status_code == 400
    pair.refresh_from_db()
    assert pair.status == Pair.Status.PROPOSED and pair.version == 1


def _pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page()
    return doc.tobytes()


def test_nul_in_an_upload_form_is_400_and_stores_no_book(web, db):
    upload = SimpleUploadedFile("atlas.pdf", _pdf(), content_type="application/pdf")
    response = web.post("/books/", {"file": upload, "title": "Atlas\u0000"})
    assert response.status_code == 400
    assert not Textbook.objects.exists()


def test_nul_in_a_page_query_string_is_400(web, db):
    assert web.get("/releases/preview/?statuses=%00").status_code == 400


# -- folders are not files ---------------------------------------------------------------------
def test_a_folder_under_files_is_404(web, isolated_media):
    (isolated_media / "crops" / "ab").mkdir(parents=True)
    for url in ("/files/crops/", "/files/crops/ab", "/files/crops/ab/"):
        assert web.get(url).status_code == 404, url


def test_a_folder_of_a_release_is_404(ready, staff):
    for path in ("images", "images/", "formats/sharegpt", "formats/sharegpt/"):
        response = staff.get(f"/api/releases/{ready.pk}/files/{path}")
        assert response.status_code == 404, path


# -- ids and counts in query strings and forms ------------------------------------------------
#: str.isdigit() accepts both; int() refuses them (a superscript, and past Python's 4,300 digits)
NOT_INTS = ["\u00b2", "9" * 5000]


@pytest.mark.parametrize("value", NOT_INTS)
def test_ids_in_page_query_strings_that_int_refuses_are_ignored(web, pair, value):
    for url in ("/review/next/", "/review/vqa/next/"):
        response = web.get(url, {"book": value})
        assert response.status_code in (200, 302), url
    response = web.get(f"/review/figures/{pair.panel.figure_id}/panels/", {"pair": value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", NOT_INTS)
def test_numbers_in_page_forms_that_int_refuses_are_refused(web, pair, ready, value):
    response = web.post(
        f"/releases/{ready.pk}/train/",
        {"stage": "sft", "base": "", "max_steps": value, "init_from_run": value},
    )
    assert response.status_code == 400  # refused by the training form, next to the field
    assert not TrainingRun.objects.exists()
    figure = pair.panel.figure_id
    for action, fields in (
        ("split", {"split_pair": value, "split_boxes": "0,0,1,1;1,1,2,2"}),
        ("merge", {"merge": [value, str(pair.pk)]}),
        ("adjust", {f"version_{value}": "1", f"version_{pair.pk}": value}),
    ):
        response = web.post(f"/review/figures/{figure}/panels/", {"action": action, **fields})
        assert response.status_code < 500, action
    pair.refresh_from_db()
    assert pair.version == 1
