"""Every free-text field has a length limit (curation/limits.py), on every path that writes it:
the service refuses (so no path is missed), and the API and HTML forms say so on the field."""

from __future__ import annotations

import io

import pytest

from curation import limits
from curation.models import Pair, Panel, Release, Textbook, TrainingRun, VQAItem
from curation.services import panels as panel_service
from curation.services import releases as release_service
from curation.services import review as review_service
from curation.services import textbooks as textbook_service
from curation.services import training as training_service
from curation.services import vqa as vqa_service
from curation.services.errors import ServiceError
from tests.factories import make_book, make_pairs

MIB = 1024 * 1024
HUGE = "x" * (9 * MIB)  # the 9 MiB caption that used to be accepted


@pytest.fixture
def expert(make_user):
    return make_user("ann", "expert")


@pytest.fixture
def pair(db):
    return make_pairs(make_book(), 1)[0]


def _too_long(excinfo, field: str) -> None:
    assert excinfo.value.code == "too_long" and excinfo.value.status == 400
    assert excinfo.value.extra["field"] == field
    assert "at most" in excinfo.value.message


# -- the one place the limits live ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "field", "limit"),
    [
        (Pair, "text", limits.CAPTION),
        (Pair, "diagnosis", limits.DIAGNOSIS),
        (Pair, "reject_note", limits.REJECT_NOTE),
        (Panel, "subcaption", limits.SUBCAPTION),
        (VQAItem, "question", limits.QUESTION),
        (VQAItem, "answer", limits.ANSWER),
        (VQAItem, "question_type", limits.QUESTION_TYPE),
        (VQAItem, "reject_note", limits.REJECT_NOTE),
        (Textbook, "title", limits.TITLE),
        (Textbook, "licence_note", limits.LICENCE_NOTE),
        (Release, "description", limits.RELEASE_DESCRIPTION),
        (TrainingRun, "error", limits.TRAINING_ERROR),
    ],
)
def test_models_carry_the_limit_for_forms_and_serializers(model, field, limit):
    """Django does not enforce a TextField's max_length itself: its forms and DRF's do."""
    from django.forms import modelform_factory
    from rest_framework import serializers

    assert model._meta.get_field(field).max_length == limit
    form_class = modelform_factory(model, fields=[field])
    assert not form_class({field: "x" * (limit + 1)}).is_valid()
    assert form_class({field: "x" * limit}).is_valid()
    meta = type("Meta", (), {"model": model, "fields": [field]})
    serializer_class = type("S", (serializers.ModelSerializer,), {"Meta": meta})
    refused = serializer_class(data={field: "x" * (limit + 1)})
    assert not refused.is_valid() and field in refused.errors
    assert serializer_class(data={field: "x" * limit}).is_valid()


def test_the_limits_fit_a_real_textbook():
    assert limits.CAPTION >= 10_000 and limits.ANSWER >= 10_000
    assert limits.TITLE < limits.CAPTION and limits.QUESTION < limits.ANSWER


# -- pair review: service, API, HTML form ---------------------------------------------------------
def _review(pair, user, **kwargs):
    kwargs.setdefault("action", "accept")
    return review_service.review_pair(pair.pk, user, version=pair.version, **kwargs)


@pytest.mark.parametrize(
    ("field", "limit"), [("text", limits.CAPTION), ("diagnosis", limits.DIAGNOSIS)]
)
def test_pair_edit_at_the_limit_is_kept_and_one_more_is_refused(pair, expert, field, limit):
    with pytest.raises(ServiceError) as refused:
        _review(pair, expert, changes={field: "y" * (limit + 1)})
    _too_long(refused, field)
    pair.refresh_from_db()
    assert pair.status == "proposed" and pair.version == 1
    done = _review(pair, expert, changes={field: "y" * limit})
    assert getattr(done, field) == "y" * limit and done.status == "edited"


def test_reject_note_over_the_limit_is_refused(pair, expert):
    with pytest.raises(ServiceError) as refused:
        _review(pair, expert, action="reject", reason="other", note="n" * (limits.REJECT_NOTE + 1))
    _too_long(refused, "note")
    done = _review(pair, expert, action="reject", reason="other", note="n" * limits.REJECT_NOTE)
    assert done.reject_note == "n" * limits.REJECT_NOTE


def test_api_refuses_a_9_mib_caption_on_the_field(pair, api_client_for):
    api = api_client_for("expert")
    response = api.post(
        f"/api/pairs/{pair.pk}/review/",
        {"version": 1, "action": "accept", "changes": {"text": HUGE}},
        format="json",
    )
    assert response.status_code == 400
    message = response.json()["changes"]["text"][0]
    assert f"{limits.CAPTION}" in message
    pair.refresh_from_db()
    assert pair.status == "proposed" and len(pair.text) < 100


def test_api_refuses_a_long_note_and_diagnosis_on_their_fields(pair, api_client_for):
    api = api_client_for("expert")
    url = f"/api/pairs/{pair.pk}/review/"
    note = api.post(url, {"version": 1, "action": "reject", "reason": "other",
                          "note": "n" * (limits.REJECT_NOTE + 1)}, format="json")  # fmt: skip
    assert note.status_code == 400 and "note" in note.json()
    long_dx = {"diagnosis": "d" * (limits.DIAGNOSIS + 1)}
    dx = api.post(url, {"version": 1, "action": "accept", "changes": long_dx}, format="json")
    assert dx.status_code == 400 and "diagnosis" in dx.json()["changes"]


def _form(pair, **fields):
    data = {"action": "accept", "version": pair.version, "text": pair.text, "age": "40",
            "modality": "clinical", "diagnosis": "psoriasis", "sex": "male"}  # fmt: skip
    data.update(fields)
    return data


def test_html_form_refuses_a_9_mib_caption_with_the_message(pair, client, expert):
    client.force_login(expert)
    response = client.post(f"/review/pairs/{pair.pk}/", _form(pair, text=HUGE))
    assert response.status_code == 400
    html = response.content.decode()
    assert "The caption is 9,437,184 characters long; at most 20,000 are allowed" in html
    pair.refresh_from_db()
    assert pair.status == "proposed" and len(pair.text) < 100


def test_html_form_keeps_what_the_expert_typed(pair, client, expert):
    client.force_login(expert)
    typed = "Plaque psoriasis, " + "z" * limits.CAPTION
    response = client.post(
        f"/review/pairs/{pair.pk}/", _form(pair, text=typed, diagnosis="guttate psoriasis")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert f">{typed}</textarea>" in html
    assert 'value="guttate psoriasis"' in html
    assert f'maxlength="{limits.CAPTION}"' in html  # the browser stops it being typed at all
    # At the limit it is saved.
    ok = client.post(f"/review/pairs/{pair.pk}/", _form(pair, text="z" * limits.CAPTION))
    assert ok.status_code == 302
    assert Pair.objects.get(pk=pair.pk).text == "z" * limits.CAPTION


# -- VQA items ---------------------------------------------------------------------------------
@pytest.fixture
def item(pair):
    Pair.objects.filter(pk=pair.pk).update(status="accepted")
    return VQAItem.objects.create(
        pair=pair, question_type="diagnosis", question="What is it?", answer="Psoriasis.",
        draft={"question": "What is it?", "answer": "Psoriasis."}, prompt_version="v1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "limit"),
    [("question", limits.QUESTION), ("answer", limits.ANSWER), ("note", limits.REJECT_NOTE)],
)
def test_vqa_review_limits(item, expert, field, limit):
    extra = {"action": "reject", "reason": "other"} if field == "note" else {"action": "accept"}
    with pytest.raises(ServiceError) as refused:
        vqa_service.review_item(item.pk, expert, version=1, **extra, **{field: "q" * (limit + 1)})
    _too_long(refused, field)
    item.refresh_from_db()
    assert item.status == "drafted" and item.version == 1
    vqa_service.review_item(item.pk, expert, version=1, **extra, **{field: "q" * limit})
    item.refresh_from_db()
    assert item.version == 2


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("question_type", limits.QUESTION_TYPE),
        ("question", limits.QUESTION),
        ("answer", limits.ANSWER),
    ],
)
def test_vqa_add_limits(item, expert, field, limit):
    values = {"question_type": "site", "question": "Where?", "answer": "Elbow."}
    with pytest.raises(ServiceError) as refused:
        vqa_service.add_item(item.pair_id, expert, **{**values, field: "a" * (limit + 1)})
    _too_long(refused, field)
    assert VQAItem.objects.count() == 1
    made = vqa_service.add_item(item.pair_id, expert, **{**values, field: "a" * limit})
    assert getattr(made, field) == "a" * limit


def test_vqa_api_refuses_on_the_field(item, api_client_for):
    api = api_client_for("expert")
    body = {"version": 1, "action": "accept", "answer": HUGE}
    review = api.post(f"/api/vqa-items/{item.pk}/review/", body, format="json")
    assert review.status_code == 400 and "answer" in review.json()
    body = {"pair": item.pair_id, "question_type": "site", "answer": "A.",
            "question": "q" * (limits.QUESTION + 1)}  # fmt: skip
    add = api.post("/api/vqa-items/", body, format="json")
    assert add.status_code == 400 and "question" in add.json()
    assert VQAItem.objects.count() == 1


def test_vqa_html_forms_show_the_message_and_keep_the_text(item, client, expert):
    client.force_login(expert)
    typed = "a" * (limits.ANSWER + 1)
    body = {"version": 1, "action": "accept", "question": "Which?", "answer": typed}
    edit = client.post(f"/review/vqa/items/{item.pk}/", body)
    assert edit.status_code == 400
    html = edit.content.decode()
    assert "The answer is 20,001 characters long; at most 20,000 are allowed" in html
    assert f">{typed}</textarea>" in html and ">Which?</textarea>" in html
    body = {"question_type": "site", "question": "Where is it?", "answer": typed}
    added = client.post(f"/review/vqa/pairs/{item.pair_id}/add/", body)
    assert added.status_code == 400
    html = added.content.decode()
    assert "at most 20,000 are allowed" in html
    assert ">Where is it?</textarea>" in html and 'value="site"' in html
    assert VQAItem.objects.count() == 1 and VQAItem.objects.get().answer == "Psoriasis."


# -- panel sub-captions ---------------------------------------------------------------------------
def test_subcaption_limit(pair, expert):
    versions = {pair.pk: 1}
    figure = pair.panel.figure_id
    with pytest.raises(ServiceError) as refused:
        panel_service.set_subcaptions(
            figure, expert, changes={pair.pk: {"subcaption": "s" * (limits.SUBCAPTION + 1)}},
            versions=versions,
        )  # fmt: skip
    _too_long(refused, "subcaption")
    panel_service.set_subcaptions(
        figure, expert, changes={pair.pk: {"subcaption": "s" * limits.SUBCAPTION}},
        versions=versions,
    )  # fmt: skip
    assert Panel.objects.get(pk=pair.panel_id).subcaption == "s" * limits.SUBCAPTION


# -- textbook metadata ------------------------------------------------------------------------
@pytest.fixture
def no_ingest(monkeypatch):
    monkeypatch.setattr("curation.services.dispatch.enqueue_ingest", lambda *args: None)


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("title", limits.TITLE),
        ("edition", limits.EDITION),
        ("authors", limits.AUTHORS),
        ("licence_note", limits.LICENCE_NOTE),
    ],
)
def test_textbook_metadata_limits(db, sample_book, no_ingest, field, limit):
    path, _ = sample_book
    too_long = textbook_service.BookMetadata(**{field: "m" * (limit + 1)})
    with open(path, "rb") as fh, pytest.raises(ServiceError) as refused:
        textbook_service.import_textbook(fh, filename="atlas.pdf", metadata=too_long)
    _too_long(refused, field)
    assert not Textbook.objects.exists()
    fits = textbook_service.BookMetadata(**{field: "m" * limit})
    with open(path, "rb") as fh:
        book = textbook_service.import_textbook(fh, filename="atlas.pdf", metadata=fits).textbook
    assert getattr(book, field) == "m" * limit


def test_textbook_metadata_over_the_limit_via_api_and_form(
    db, sample_book, no_ingest, api_client_for, client, make_user
):
    path, _ = sample_book
    api = api_client_for("curator")
    with open(path, "rb") as fh:
        response = api.post("/api/textbooks/", {"file": fh, "title": "t" * (limits.TITLE + 1)},
                            format="multipart")  # fmt: skip
    assert response.status_code == 400 and "title" in response.json()
    client.force_login(make_user("cur", "curator"))
    with open(path, "rb") as fh:
        page = client.post("/books/", {"file": fh, "edition": "e" * (limits.EDITION + 1)})
    assert page.status_code == 400
    assert "The edition is 101 characters long; at most 100 are allowed" in page.content.decode()
    assert not Textbook.objects.exists()


# -- release notes --------------------------------------------------------------------------------
def test_release_notes_limit(db, make_user, api_client_for):
    curator = make_user("cur", "curator")
    with pytest.raises(ServiceError) as refused:
        release_service.create_release(
            name="derm", version="1.0.0", user=curator,
            description="d" * (limits.RELEASE_DESCRIPTION + 1),
        )  # fmt: skip
    _too_long(refused, "description")
    api = api_client_for("curator")
    body = {
        "name": "derm",
        "version": "1.0.0",
        "description": "d" * (limits.RELEASE_DESCRIPTION + 1),
    }
    response = api.post("/api/releases/", body, format="json")
    assert response.status_code == 400 and "description" in response.json()
    assert not Release.objects.exists()


def test_release_notes_at_the_limit_pass_the_length_check(db, make_user):
    curator = make_user("cur", "curator")
    # Nothing matches the filter here: the refusal that comes next is about the selection.
    with pytest.raises(ServiceError) as refused:
        release_service.create_release(
            name="derm", version="1.0.0", user=curator,
            description="d" * limits.RELEASE_DESCRIPTION,
        )  # fmt: skip
    assert refused.value.code != "too_long"


# -- training runs --------------------------------------------------------------------------------
@pytest.fixture
def claimed(db, make_user):
    release = Release.objects.create(name="derm", version="1.0.0", status="ready")
    run = TrainingRun.objects.create(release=release, stage="sft")
    worker = make_user("gpu1", "ml_worker")
    training_service.claim_training_run(run.pk, worker, "box-1")
    return run, worker


def test_a_5_mb_training_error_is_refused(claimed, api_client_for):
    run, worker = claimed
    five_mb = "E" * (5 * 1000 * 1000)
    with pytest.raises(ServiceError) as refused:
        training_service.report_training_run(run.pk, worker, {"status": "failed", "error": five_mb})
    _too_long(refused, "error")
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=worker).key}")
    response = api.patch(f"/api/training-runs/{run.pk}/", {"status": "failed", "error": five_mb},
                         format="json")  # fmt: skip
    assert response.status_code == 400 and "error" in response.json()
    run.refresh_from_db()
    assert run.status == "running" and run.error == ""


def test_training_error_at_the_limit_is_kept(claimed):
    run, worker = claimed
    with pytest.raises(ServiceError):
        training_service.report_training_run(
            run.pk, worker, {"error": "e" * (limits.TRAINING_ERROR + 1)}
        )
    done = training_service.report_training_run(
        run.pk, worker, {"status": "failed", "error": "e" * limits.TRAINING_ERROR}
    )
    assert done.status == "failed" and len(done.error) == limits.TRAINING_ERROR


def test_metrics_are_limited_also_when_reports_add_up(claimed):
    run, worker = claimed
    half = limits.TRAINING_METRICS_BYTES // 2
    with pytest.raises(ServiceError) as refused:
        training_service.report_training_run(
            run.pk, worker, {"metrics": {"blob": "m" * limits.TRAINING_METRICS_BYTES}}
        )
    _too_long(refused, "metrics")
    training_service.report_training_run(run.pk, worker, {"metrics": {"a": "m" * half}})
    with pytest.raises(ServiceError) as merged:
        training_service.report_training_run(run.pk, worker, {"metrics": {"b": "m" * half}})
    _too_long(merged, "metrics")
    run.refresh_from_db()
    assert set(run.metrics) == {"worker", "a"}


def test_config_and_worker_name_are_limited(claimed, api_client_for):
    run, worker = claimed
    big = {"train": {"note": "c" * limits.TRAINING_CONFIG_BYTES}}
    with pytest.raises(ServiceError) as refused:
        training_service.create_training_run(run.release, "sft", big, worker)
    _too_long(refused, "config")
    curator = api_client_for("curator")
    response = curator.post("/api/training-runs/", {"release": run.release_id, "stage": "sft",
                            "config": big}, format="json")  # fmt: skip
    assert response.status_code == 400 and "config" in response.json()
    assert TrainingRun.objects.count() == 1
    queued = TrainingRun.objects.create(release=run.release, stage="sft")
    with pytest.raises(ServiceError) as name:
        training_service.claim_training_run(queued.pk, worker, "w" * (limits.WORKER_NAME + 1))
    _too_long(name, "worker")


def test_the_ml_worker_cuts_its_error_report_to_fit(monkeypatch, tmp_path):
    """A huge exception message must not make the failure report itself be refused."""
    from ml import worker as ml_worker

    sent = []

    class Client:
        def json(self, path, method="GET", body=None):
            sent.append(body)
            return {}

    def explode(*args, **kwargs):
        raise RuntimeError("boom " * (MIB // 5))

    monkeypatch.setattr(ml_worker, "pull_release", explode)
    opts = ml_worker.WorkerOptions(workdir=str(tmp_path))
    assert ml_worker.execute(Client(), {"id": 1, "stage": "sft", "release": 1}, opts) == "failed"
    (report,) = sent
    assert report["status"] == "failed" and report["error"].startswith("RuntimeError: boom")
    assert len(report["error"]) <= limits.TRAINING_ERROR


# -- text extracted from a PDF: cut, with a note, never failing the book ------------------------
def test_extracted_text_over_the_limit_is_cut_and_flagged(db, monkeypatch):
    from PIL import Image

    from curation.extract import ChunkResult, FigureInfo, PageInfo, PanelInfo
    from curation.models import Figure, IngestChunk
    from curation.services import ingest

    monkeypatch.setattr("curation.services.dispatch.enqueue_finalize", lambda *args: None)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 90)).save(buf, "PNG")
    png = buf.getvalue()
    book = make_book(pages=1)
    Textbook.objects.filter(pk=book.pk).update(status="processing", ingest_run=1, chunks_total=1)
    IngestChunk.objects.create(textbook=book, run=1, first_page=1, last_page=1)

    def figure(label, caption, diagnosis=""):
        panel = PanelInfo(0, None, (0, 0, 10, 10), "", png, "clinical", 0.9)
        return FigureInfo(
            label=label, page=1, bbox=(0, 0, 10, 10), caption=caption, caption_bbox=None,
            image_png=png, panels=[panel], modality="clinical", modality_confidence=0.9,
            section=[], diagnosis=diagnosis, age=None, sex=None,
        )  # fmt: skip

    result = ChunkResult(
        pages=[PageInfo(1, 595, 842, "page text", [])],
        figures=[
            figure("1.1", "C" * (limits.CAPTION + 500), diagnosis="d" * (limits.DIAGNOSIS + 1)),
            figure("1.2", "K" * limits.CAPTION),
        ],
        orphans=[],
    )
    assert ingest.record_chunk(book.pk, 1, 1, 1, result) is True
    long_one = Figure.objects.get(label="1.1")
    assert long_one.caption == "C" * limits.CAPTION and ingest.TEXT_TRUNCATED in long_one.flags
    pair = Pair.objects.get(panel__figure=long_one)
    assert pair.text == "C" * limits.CAPTION and len(pair.diagnosis) == limits.DIAGNOSIS
    assert ingest.TEXT_TRUNCATED not in pair.flags  # a note for curators, not a review flag
    at_limit = Figure.objects.get(label="1.2")
    assert at_limit.caption == "K" * limits.CAPTION and ingest.TEXT_TRUNCATED not in at_limit.flags
    assert Textbook.objects.get(pk=book.pk).status == "processing"  # the book goes on
