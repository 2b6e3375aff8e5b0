"""The re-render task: real crops from the PDF, idempotent, late jobs dropped, failures shown."""

import io

from django.core.files.storage import default_storage
from PIL import Image

from curation.extract.crop import render_box
from curation.models import Figure, Pair, ReviewEvent
from curation.selectors.panels import FAILED, RENDERING, render_states
from curation.services import panels as svc
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure, pdf_bytes
from workers.panels import render_crops


def _image(path: str) -> Image.Image:
    with default_storage.open(path, "rb") as fh:
        return Image.open(io.BytesIO(fh.read())).convert("RGB")


def test_render_box_is_pure_and_sized_by_dpi(tmp_path):
    path = tmp_path / "p.pdf"
    path.write_bytes(pdf_bytes())
    data = render_box(path, 1, LEFT, dpi=72)
    img = Image.open(io.BytesIO(data))
    assert img.size == (120, 340)
    assert img.convert("RGB").getpixel((60, 170))[0] > 150  # the red 'photograph'


def test_split_then_render_gives_each_panel_its_own_crop(
    book, expert, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.CROP_DPI = 72
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    with django_capture_on_commit_callbacks(execute=True):
        left, right = svc.split_panel(
            figure.pk, expert, pair_id=pair.pk, version=1, boxes=[LEFT, RIGHT]
        )
    left.refresh_from_db()
    right.refresh_from_db()
    assert left.panel.image != right.panel.image != "crops/panel.png"
    red, blue = _image(left.panel.image), _image(right.panel.image)
    assert red.size == (120, 340) and red.getpixel((60, 170))[0] > 150
    assert blue.getpixel((60, 170))[2] > 150
    assert render_states([left.pk, right.pk]) == {}
    rendered = ReviewEvent.objects.filter(action="pair.crop_rendered")
    assert {e.target_id for e in rendered} == {left.pk, right.pk}
    assert all(e.actor is None for e in rendered)
    assert Pair.objects.get(pk=left.pk).version == 2  # rendering does not invalidate forms


def test_rerunning_the_task_changes_nothing(book, expert, settings, queued_nothing):
    settings.CROP_DPI = 72
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: LEFT}, versions={pair.pk: 1})
    assert render_crops(figure.pk, [pair.pk]) == 1
    first = Pair.objects.get(pk=pair.pk).panel.image
    assert render_crops(figure.pk, [pair.pk]) == 0
    assert Pair.objects.get(pk=pair.pk).panel.image == first
    assert ReviewEvent.objects.filter(action="pair.crop_rendered").count() == 1


def test_a_late_job_for_an_old_box_is_dropped(book, expert, settings, queued_nothing, monkeypatch):
    settings.CROP_DPI = 72
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: LEFT}, versions={pair.pk: 1})
    job = svc.crop_job(figure.pk, [pair.pk])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: RIGHT}, versions={pair.pk: 2})
    # the first job renders the old box after the second fix: its crop must not win
    monkeypatch.setattr(svc, "crop_job", lambda *a: job)
    assert render_crops(figure.pk, [pair.pk]) == 0
    assert render_states([pair.pk]) == {pair.pk: RENDERING}
    monkeypatch.undo()
    assert render_crops(figure.pk, [pair.pk]) == 1
    assert _image(Pair.objects.get(pk=pair.pk).panel.image).getpixel((60, 170))[2] > 150


def test_a_grown_figure_gets_a_new_crop_too(book, expert, settings, queued_nothing):
    settings.CROP_DPI = 72
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [40, 60, 300, 410]}, versions={pair.pk: 1})
    assert render_crops(figure.pk, [pair.pk], True) == 2
    figure.refresh_from_db()
    assert figure.bbox == [40, 60, 300, 410] and figure.image != "crops/fig.png"
    assert _image(figure.image).size == (260, 350)


def test_an_unreadable_pdf_marks_the_crop_failed(book, expert, queued_nothing):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: LEFT}, versions={pair.pk: 1})
    default_storage.delete(book.file)
    with default_storage.open(book.file, "wb") as fh:
        fh.write(b"not a pdf")
    assert render_crops(figure.pk, [pair.pk]) == 0
    assert render_states([pair.pk]) == {pair.pk: FAILED}
    assert Pair.objects.get(pk=pair.pk).panel.image == "crops/panel.png"
    event = ReviewEvent.objects.get(action="pair.crop_failed")
    assert "could not be rendered" in event.note


def test_task_for_a_deleted_figure_is_a_no_op(db):
    assert render_crops(12345, [1, 2]) == 0
    assert not Figure.objects.exists()
