"""Racing fixes never both win, and a real worker (the ingest queue) re-renders the crops."""

import threading

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from curation.models import Pair, Panel, ReviewEvent
from curation.selectors.panels import render_states
from curation.services import dispatch
from curation.services import panels as svc
from curation.services.errors import Conflict
from tests.conftest import wait_for
from tests.dispatching import record_sends
from tests.factories import make_book
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure, pdf_bytes


def _book():
    book = make_book(pages=1)
    default_storage.save(book.file, ContentFile(pdf_bytes()))
    return book


@pytest.mark.django_db(transaction=True)
def test_racing_fixes_of_one_version_one_wins_the_rest_get_409(make_user, monkeypatch):
    record_sends(monkeypatch, dispatch.RENDER_CROPS)
    figure, (a, b) = make_figure(_book(), boxes=[LEFT, RIGHT])
    users = [make_user(f"e{i}", "expert") for i in range(4)]
    outcomes: list[str] = []
    errors = []

    def work(i, user):
        try:
            if i % 2:
                svc.merge_panels(
                    figure.pk, user, pair_ids=[a.pk, b.pk], versions={a.pk: 1, b.pk: 1}
                )
            else:
                box = [50, 61 + i, 170, 400]
                svc.adjust_panels(figure.pk, user, boxes={a.pk: box}, versions={a.pk: 1})
            outcomes.append("ok")
        except Conflict as exc:
            outcomes.append(exc.code)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(outcomes) == ["ok", "stale", "stale", "stale"]
    assert Pair.objects.get(pk=a.pk).version == 2
    fixes = ReviewEvent.objects.filter(target_id=a.pk, action__startswith="pair.panel_")
    assert fixes.count() == 1


@pytest.mark.slow
def test_a_real_worker_re_renders_after_commit(celery_worker_factory, make_user, settings):
    figure, (pair,) = make_figure(_book(), boxes=[FIGURE_BOX])
    expert = make_user("ann", "expert")
    celery_worker_factory(CROP_DPI="72")
    svc.split_panel(figure.pk, expert, pair_id=pair.pk, version=1, boxes=[LEFT, RIGHT])
    ids = list(Pair.objects.values_list("pk", flat=True))
    wait_for(lambda: not render_states(ids), 60, message="crops re-rendered by the worker")
    images = list(Panel.objects.order_by("index").values_list("image", flat=True))
    assert len(set(images)) == 2 and "crops/panel.png" not in images
    assert ReviewEvent.objects.filter(action="pair.crop_rendered").count() == 2
