"""Overlapping panel boxes are refused (a crop would hold part of the next panel), and an
expert can add a panel the machine missed; both through the service and the editor's form."""

import pytest

from curation.models import Pair, Panel, ReviewEvent
from curation.selectors.panels import ADDED, RENDERING, render_states
from curation.services import dispatch
from curation.services import panels as svc
from curation.services.errors import ServiceError
from tests.dispatching import record_sends
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure


@pytest.fixture
def queued(monkeypatch):
    jobs = record_sends(monkeypatch, dispatch.RENDER_CROPS)
    return jobs


def _state(figure):
    return (
        list(Panel.objects.filter(figure=figure).order_by("index").values_list("bbox", flat=True)),
        list(Pair.objects.order_by("pk").values_list("pk", "version")),
        ReviewEvent.objects.count(),
    )


def test_overlap_helper_ignores_shared_edges():
    assert svc.overlap_area([0, 0, 10, 10], [10, 0, 20, 10]) == 0  # a split's cut
    assert svc.overlap_area([0, 0, 10, 10], [9.8, 0, 20, 10]) == 0  # within the tolerance
    assert svc.overlap_area([0, 0, 10, 10], [8, 2, 20, 10]) == 2 * 8


def test_adjust_into_a_neighbour_is_refused_and_stores_nothing(book, expert, queued):
    figure, (a, _b) = make_figure(book, boxes=[LEFT, RIGHT], letters=["a", "b"])
    before = _state(figure)
    with pytest.raises(ServiceError) as err:
        svc.adjust_panels(figure.pk, expert, boxes={a.pk: [50, 60, 200, 400]}, versions={a.pk: 1})
    assert err.value.code == "overlap" and err.value.status == 400
    assert "panel a and panel b" in err.value.message and "Nothing was saved" in err.value.message
    assert _state(figure) == before and queued == []


def test_moving_both_boxes_apart_together_is_fine(book, expert, queued):
    figure, (a, b) = make_figure(book, boxes=[LEFT, RIGHT])
    svc.adjust_panels(
        figure.pk, expert, boxes={a.pk: [50, 60, 190, 400], b.pk: [190, 60, 300, 400]},
        versions={a.pk: 1, b.pk: 1},
    )  # fmt: skip
    assert [p.bbox for p in Panel.objects.order_by("index")] == [
        [50, 60, 190, 400], [190, 60, 300, 400]
    ]  # fmt: skip


def test_an_old_overlap_elsewhere_does_not_block_an_unrelated_fix(book, expert, queued):
    figure, (_a, _b, c) = make_figure(
        book, boxes=[[50, 60, 150, 200], [140, 60, 300, 200], [50, 250, 300, 400]]
    )  # a and b overlap from extraction; c is below both
    svc.adjust_panels(figure.pk, expert, boxes={c.pk: [50, 260, 300, 400]}, versions={c.pk: 1})
    assert Panel.objects.get(pair=c).bbox == [50, 260, 300, 400]


def test_split_parts_that_overlap_are_refused(book, expert, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    before = _state(figure)
    with pytest.raises(ServiceError) as err:
        svc.split_panel(
            figure.pk, expert, pair_id=pair.pk, version=1,
            boxes=[[50, 60, 180, 400], [170, 60, 300, 400]],
        )  # fmt: skip
    assert err.value.code == "overlap" and "part 1 of the split and part 2" in err.value.message
    assert _state(figure) == before


def test_split_part_over_a_sibling_is_refused(book, expert, queued):
    figure, (a, _b) = make_figure(book, boxes=[LEFT, RIGHT], letters=["a", "b"])
    with pytest.raises(ServiceError, match="panel b and part 2"):
        svc.split_panel(
            figure.pk, expert, pair_id=a.pk, version=1,
            boxes=[[50, 60, 110, 400], [110, 60, 200, 400]],
        )  # fmt: skip


def test_merge_whose_box_would_cover_another_panel_is_refused(book, expert, queued):
    figure, (a, _b, c) = make_figure(
        book, boxes=[[50, 60, 120, 400], [130, 60, 200, 400], [210, 60, 300, 400]],
        letters=["a", "b", "c"],
    )  # fmt: skip
    before = _state(figure)
    with pytest.raises(ServiceError, match="panel b and the merged box"):
        svc.merge_panels(figure.pk, expert, pair_ids=[a.pk, c.pk], versions={a.pk: 1, c.pk: 1})
    assert _state(figure) == before


def test_a_drawn_box_becomes_a_new_proposed_pair(
    book, expert, queued, django_capture_on_commit_callbacks
):
    figure, (a,) = make_figure(book, boxes=[[50, 60, 170, 400]])
    with django_capture_on_commit_callbacks(execute=True):
        (new,) = svc.adjust_panels(
            figure.pk, expert, boxes={}, versions={}, new_boxes=[[180, 60, 300, 400]]
        )
    assert new.status == "proposed" and new.panel.bbox == [180, 60, 300, 400]
    assert new.panel.index == 1 and new.textbook_id == book.pk
    assert new.modality == a.modality and new.proposed["diagnosis"] == a.proposed["diagnosis"]
    (event,) = ReviewEvent.objects.filter(target_type="pair", target_id=new.pk)
    assert event.action == ADDED and event.actor == expert
    assert event.after["panel"]["bbox"] == [180, 60, 300, 400]
    assert render_states([new.pk]) == {new.pk: RENDERING}
    assert queued == [(figure.pk, [new.pk], False)]


def test_a_drawn_box_over_a_panel_is_refused(book, expert, queued):
    figure, (_a,) = make_figure(book, boxes=[[50, 60, 170, 400]], letters=["a"])
    before = _state(figure)
    with pytest.raises(ServiceError, match="panel a and the new box"):
        svc.adjust_panels(figure.pk, expert, boxes={}, versions={}, new_boxes=[[160, 60, 300, 400]])
    assert _state(figure) == before


def test_editor_form_refuses_overlap_with_a_400_and_the_message(client, expert, book):
    figure, (a, b) = make_figure(book, boxes=[LEFT, RIGHT], letters=["a", "b"])
    client.force_login(expert)
    response = client.post(
        f"/review/figures/{figure.pk}/panels/",
        {"action": "adjust", f"box_{a.pk}": "50,60,200,400", f"box_{b.pk}": ",".join(
            str(v) for v in RIGHT), f"version_{a.pk}": 1, f"version_{b.pk}": 1},
    )  # fmt: skip
    assert response.status_code == 400
    assert b'data-code="overlap"' in response.content
    assert b"panel a and panel b" in response.content
    assert Panel.objects.get(pair=a).bbox == LEFT


def test_editor_form_adds_drawn_boxes(client, expert, book, queued):
    figure, (a,) = make_figure(book, boxes=[[50, 60, 170, 400]])
    client.force_login(expert)
    response = client.post(
        f"/review/figures/{figure.pk}/panels/",
        {"action": "adjust", f"box_{a.pk}": "50,60,170,400", f"version_{a.pk}": 1,
         "new_boxes": "180,60,300,230;180,240,300,400"},
    )  # fmt: skip
    assert response.status_code == 302
    assert list(Panel.objects.order_by("index").values_list("bbox", flat=True)) == [
        [50, 60, 170, 400], [180, 60, 300, 230], [180, 240, 300, 400]
    ]  # fmt: skip
