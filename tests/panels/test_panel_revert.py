"""Reverting a pair to an earlier state brings its panel back too: box, letter, sub-caption,
pairs split off it or merged into it, and a crop re-rendered by the panel fixes' task."""

import pytest

from curation.models import Claim, Pair, Panel, ReviewEvent
from curation.selectors.panels import RENDERING, figure_layout, render_states
from curation.services import dispatch
from curation.services import panels as panel_svc
from curation.services import review as svc
from curation.services.errors import Conflict, NotAllowed
from tests.dispatching import record_sends
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure

MOVED = [60.0, 70.0, 290.0, 390.0]


@pytest.fixture
def renders(monkeypatch):
    """Render jobs queued after commit; a test runs them with ``run_renders``."""
    jobs = record_sends(monkeypatch, dispatch.RENDER_CROPS)
    return jobs


def run_renders(jobs) -> None:
    from workers.panels import render_crops

    while jobs:
        render_crops(*jobs.pop(0))


def event_of(pair, action) -> ReviewEvent:
    return ReviewEvent.objects.filter(target_type="pair", target_id=pair.pk, action=action).last()


def version_of(pair) -> int:
    return Pair.objects.get(pk=pair.pk).version


def layout(figure) -> list[tuple]:
    return [
        (p.index, p.letter, p.bbox, p.subcaption, getattr(p, "pair", None) and p.pair.pk)
        for p in Panel.objects.filter(figure=figure).select_related("pair").order_by("index")
    ]


def test_reverting_a_box_adjust_restores_the_box_and_re_renders_the_crop(
    book, expert, curator, renders, settings, django_capture_on_commit_callbacks
):
    settings.CROP_DPI = 72
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    with django_capture_on_commit_callbacks(execute=True):
        panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    run_renders(renders)
    moved_crop = Panel.objects.get(pair=pair).image
    assert moved_crop != "crops/panel.png"

    proposed = event_of(pair, "pair.proposed")
    with django_capture_on_commit_callbacks(execute=True):
        reverted = svc.revert_pair(pair.pk, curator, event_id=proposed.pk, version=2)
    panel = Panel.objects.get(pair=pair)
    assert panel.bbox == FIGURE_BOX and reverted.version == 3
    assert renders == [(figure.pk, [pair.pk], False)]  # the panel fixes' task, queued on commit
    assert render_states([pair.pk]) == {pair.pk: RENDERING}
    assert figure_layout(figure.pk).rendering
    event = event_of(pair, "pair.reverted")
    assert event.actor == curator and f"after event {proposed.pk}" in event.note
    assert event.before["panel"]["bbox"] == MOVED and event.after["panel"]["bbox"] == FIGURE_BOX
    assert event.after["machine_bbox"] == FIGURE_BOX

    run_renders(renders)
    panel.refresh_from_db()
    assert panel.image not in (moved_crop, "crops/panel.png")
    assert render_states([pair.pk]) == {}
    assert event_of(pair, "pair.crop_rendered").after["panel"]["bbox"] == FIGURE_BOX


def test_reverting_to_a_middle_fix_gives_that_fixs_box(book, expert, curator, renders):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    first = event_of(pair, "pair.panel_adjusted")
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: LEFT}, versions={pair.pk: 2})
    svc.revert_pair(pair.pk, curator, event_id=first.pk, version=3)
    assert Panel.objects.get(pair=pair).bbox == MOVED


def test_reverting_a_decision_made_before_a_fix_puts_the_old_box_back(
    book, expert, curator, renders
):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.review_pair(pair.pk, expert, version=1, action="accept", changes={"text": "Mine."})
    accepted = event_of(pair, "pair.edited")
    panel_svc.adjust_panels(
        figure.pk, curator, boxes={pair.pk: MOVED}, versions={pair.pk: 2}, force=True
    )
    assert Pair.objects.get(pk=pair.pk).status == "proposed"
    reverted = svc.revert_pair(pair.pk, curator, event_id=accepted.pk, version=3)
    assert (reverted.status, reverted.text) == ("edited", "Mine.")
    assert Panel.objects.get(pair=pair).bbox == FIGURE_BOX


def test_reverting_a_revert_is_a_revert_too(book, expert, curator, renders):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    adjusted = event_of(pair, "pair.panel_adjusted")
    svc.revert_pair(pair.pk, curator, event_id=event_of(pair, "pair.proposed").pk, version=2)
    svc.revert_pair(pair.pk, curator, event_id=adjusted.pk, version=3)
    assert Panel.objects.get(pair=pair).bbox == MOVED
    assert ReviewEvent.objects.filter(action="pair.reverted", target_id=pair.pk).count() == 2


def test_reverting_a_split_removes_the_new_pairs_and_redoing_it_brings_them_back(
    book, expert, curator, renders, django_capture_on_commit_callbacks
):
    figure, (a, b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["Plaque.", "Scale."]
    )
    before = layout(figure)
    _, new = panel_svc.split_panel(
        figure.pk, expert, pair_id=a.pk, version=1,
        boxes=[[50, 60, 170, 230], [50, 230, 170, 400]], letters=["a", "c"],
        subcaptions=[None, "Close-up."],
    )  # fmt: skip
    split = event_of(a, "pair.panel_split")
    renders.clear()

    with django_capture_on_commit_callbacks(execute=True):
        svc.revert_pair(a.pk, curator, event_id=event_of(a, "pair.proposed").pk, version=2)
    assert layout(figure) == before
    assert not Pair.objects.filter(pk=new.pk).exists()
    removed = event_of(new, "pair.reverted")
    assert removed.after["merged_into"] == a.pk and removed.before["panel"]["letter"] == "c"
    assert renders == [(figure.pk, [a.pk], False)]
    assert Pair.objects.get(pk=b.pk).version == 1  # the sibling is not touched

    with django_capture_on_commit_callbacks(execute=True):
        svc.revert_pair(a.pk, curator, event_id=split.pk, version=3)
    assert renders == [(figure.pk, [a.pk], False), (figure.pk, [a.pk, new.pk], False)]
    back = Pair.objects.get(pk=new.pk)
    assert (back.panel.letter, back.panel.subcaption, back.text) == ("c", "Close-up.", "Close-up.")
    assert back.version > 1 and back.proposed["split_from"] == a.pk
    assert [row[4] for row in layout(figure)] == [a.pk, new.pk, b.pk]
    assert Panel.objects.get(pair=a).bbox == [50, 60, 170, 230]
    assert set(render_states([a.pk, new.pk, b.pk])) == {a.pk, new.pk}


def test_reverting_a_merge_brings_the_merged_pair_back_with_its_id_and_decision(
    book, expert, curator, renders
):
    figure, (a, b, c) = make_figure(
        book, boxes=[LEFT, RIGHT, [310, 60, 400, 400]], letters=["a", "b", "c"],
        subcaptions=["Left half.", "Right half.", "Other."],
    )  # fmt: skip
    svc.review_pair(b.pk, expert, version=1, action="reject", reason="bad_crop")
    before = layout(figure)
    panel_svc.merge_panels(
        figure.pk, curator, pair_ids=[a.pk, b.pk], versions={a.pk: 1, b.pk: 2}, force=True
    )
    merged = event_of(a, "pair.panel_merged")
    assert not Pair.objects.filter(pk=b.pk).exists()

    svc.revert_pair(a.pk, curator, event_id=event_of(a, "pair.proposed").pk, version=2)
    assert layout(figure) == before
    back = Pair.objects.get(pk=b.pk)
    assert (back.status, back.reject_reason, back.text) == ("rejected", "bad_crop", "Right half.")
    assert back.proposed["text"] == "Right half." and back.version > 2
    restored = event_of(back, "pair.reverted")
    assert restored.after["panel"]["bbox"] == RIGHT and restored.actor == curator
    assert set(render_states([a.pk, b.pk, c.pk])) == {a.pk, b.pk}
    assert len(svc.history(b.pk)) == 4  # proposed, rejected, merged away, restored

    svc.revert_pair(a.pk, curator, event_id=merged.pk, version=3)
    assert not Pair.objects.filter(pk=b.pk).exists()
    assert [row[2] for row in layout(figure)] == [[50.0, 60.0, 300.0, 400.0], [310, 60, 400, 400]]


def test_reverting_a_subcaption_change_restores_letter_and_text_without_a_render(
    book, expert, curator, renders
):
    figure, (a, _b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["Scale.", "Plaque."]
    )
    panel_svc.set_subcaptions(
        figure.pk, expert, changes={a.pk: {"letter": "x", "subcaption": "Other."}},
        versions={a.pk: 1},
    )  # fmt: skip
    svc.revert_pair(a.pk, curator, event_id=event_of(a, "pair.proposed").pk, version=2)
    a.refresh_from_db()
    assert (a.panel.letter, a.panel.subcaption, a.text) == ("a", "Scale.", "Scale.")
    assert renders == [] and render_states([a.pk]) == {}


def test_a_revert_that_would_remove_a_pair_someone_holds_changes_nothing(
    book, expert, curator, renders, make_user
):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    _, new = panel_svc.split_panel(
        figure.pk, expert, pair_id=pair.pk, version=1, boxes=[LEFT, RIGHT]
    )
    bob = make_user("bob", "expert")
    assert svc.claim_next(bob).pk == pair.pk
    svc.skip_pair(pair.pk, bob)  # only Review / next claims: bob goes on to the split-off pair
    assert svc.claim_next(bob).pk == new.pk
    with pytest.raises(Conflict) as exc:
        svc.revert_pair(pair.pk, curator, event_id=event_of(pair, "pair.proposed").pk, version=2)
    assert exc.value.code == "claimed"
    assert Pair.objects.filter(pk=new.pk).exists() and Claim.objects.get().user == bob
    assert Panel.objects.get(pair=pair).bbox == LEFT
    assert not ReviewEvent.objects.filter(action="pair.reverted").exists()


def test_only_curators_revert_panel_fixes(book, expert, renders):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    with pytest.raises(NotAllowed):
        svc.revert_pair(pair.pk, expert, event_id=event_of(pair, "pair.proposed").pk, version=2)
    assert Panel.objects.get(pair=pair).bbox == MOVED
    assert version_of(pair) == 2


def test_the_revert_view_restores_the_panel(book, expert, curator, renders, client):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    book.pages.update(image="pages/p1.png")  # the page view draws the panel boxes on it
    panel_svc.adjust_panels(figure.pk, expert, boxes={pair.pk: MOVED}, versions={pair.pk: 1})
    client.force_login(curator)
    page = client.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert 'class="revert"' in page and 'data-box="60.0,70.0,290.0,390.0"' in page
    response = client.post(
        f"/review/pairs/{pair.pk}/revert/",
        {"event": event_of(pair, "pair.proposed").pk, "version": 2},
    )
    assert response.status_code == 302
    page = client.get(f"/review/pairs/{pair.pk}/").content.decode()
    assert 'data-box="50.0,60.0,300.0,400.0"' in page and 'data-action="pair.reverted"' in page
    assert Panel.objects.get(pair=pair).bbox == FIGURE_BOX
