"""Panel fix services: redraw, split, merge, sub-captions; versions, events, roles, force."""

import pytest

from curation.models import Claim, Figure, Pair, Panel, Release, ReleaseItem, ReviewEvent
from curation.selectors.panels import RENDERING, figure_layout, render_states
from curation.services import dispatch
from curation.services import panels as svc
from curation.services import review as review_svc
from curation.services.errors import Conflict, NotAllowed, ServiceError
from tests.dispatching import record_sends
from tests.panels.conftest import FIGURE_BOX, LEFT, RIGHT, make_figure


@pytest.fixture
def queued(monkeypatch):
    """Render jobs the services queue after commit (nothing renders in these tests)."""
    jobs = record_sends(monkeypatch, dispatch.RENDER_CROPS)
    return jobs


def events(pair, action):
    return list(ReviewEvent.objects.filter(target_type="pair", target_id=pair.pk, action=action))


def test_adjust_bumps_version_records_before_after_and_queues_a_render(
    book, expert, queued, django_capture_on_commit_callbacks
):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    proposed = dict(pair.proposed)
    with django_capture_on_commit_callbacks(execute=True):
        svc.adjust_panels(
            figure.pk, expert, boxes={pair.pk: [60, 70, 290, 390]}, versions={pair.pk: 1}
        )
    pair.refresh_from_db()
    assert pair.version == 2 and pair.panel.bbox == [60, 70, 290, 390]
    assert pair.proposed == proposed and pair.status == "proposed"
    (event,) = events(pair, "pair.panel_adjusted")
    assert event.actor == expert
    assert event.before["panel"]["bbox"] == FIGURE_BOX
    assert event.after["panel"]["bbox"] == [60, 70, 290, 390]
    assert event.after["machine_bbox"] == FIGURE_BOX and event.after["status"] == "proposed"
    assert queued == [(figure.pk, [pair.pk], False)]
    assert render_states([pair.pk]) == {pair.pk: RENDERING}
    assert figure_layout(figure.pk).rendering


def test_machine_box_survives_several_fixes(book, expert, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [60, 70, 290, 390]}, versions={pair.pk: 1})
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [70, 80, 280, 380]}, versions={pair.pk: 2})
    last = events(pair, "pair.panel_adjusted")[-1]
    assert last.before["panel"]["bbox"] == [60, 70, 290, 390]
    assert last.after["machine_bbox"] == FIGURE_BOX
    row = figure_layout(figure.pk).rows[0]
    assert row.machine_bbox == FIGURE_BOX


def test_stale_version_is_a_409_and_changes_nothing(book, expert, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [60, 70, 290, 390]}, versions={pair.pk: 1})
    with pytest.raises(Conflict) as exc:
        svc.adjust_panels(
            figure.pk, expert, boxes={pair.pk: [0, 0, 100, 100]}, versions={pair.pk: 1}
        )
    assert exc.value.status == 409 and exc.value.code == "stale"
    assert exc.value.extra["versions"] == {pair.pk: 2}
    assert Panel.objects.get().bbox == [60, 70, 290, 390]


def test_boxes_are_validated_and_clipped_to_the_page(book, expert, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    for bad in ([1, 2, 3], [0, 0, 2, 2], ["a", 0, 1, 1], [0, 0, float("nan"), 9]):
        with pytest.raises(ServiceError) as exc:
            svc.adjust_panels(figure.pk, expert, boxes={pair.pk: bad}, versions={pair.pk: 1})
        assert exc.value.status == 400
    with pytest.raises(ServiceError, match="version"):
        svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [0, 0, 50, 50]}, versions={})
    svc.adjust_panels(
        figure.pk, expert, boxes={pair.pk: [500, 700, -20, 900]}, versions={pair.pk: 1}
    )
    assert Panel.objects.get().bbox == [0, 700, 500, 842]
    figure.refresh_from_db()  # the figure grew to hold its panel
    assert figure.bbox == [0, 60, 500, 842]
    assert ReviewEvent.objects.filter(action="figure.bbox_grown").count() == 1


def test_only_reviewers_fix_panels(book, make_user, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    worker = make_user("w", "ml_worker")
    with pytest.raises(NotAllowed):
        svc.adjust_panels(figure.pk, worker, boxes={pair.pk: [0, 0, 50, 50]}, versions={pair.pk: 1})


def test_reviewed_pairs_need_a_curators_force_and_go_back_for_review(book, expert, curator, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    review_svc.review_pair(pair.pk, expert, version=1, action="accept")
    box = {pair.pk: [60, 70, 290, 390]}
    with pytest.raises(Conflict) as exc:
        svc.adjust_panels(figure.pk, expert, boxes=box, versions={pair.pk: 2})
    assert exc.value.code == "reviewed"
    with pytest.raises(NotAllowed):
        svc.adjust_panels(figure.pk, expert, boxes=box, versions={pair.pk: 2}, force=True)
    svc.adjust_panels(figure.pk, curator, boxes=box, versions={pair.pk: 2}, force=True)
    pair.refresh_from_db()
    assert pair.status == "proposed" and pair.version == 3
    (event,) = events(pair, "pair.panel_adjusted")
    assert event.before["status"] == "accepted" and event.after["status"] == "proposed"


def test_a_pair_held_by_another_expert_is_not_changed_under_them(book, expert, make_user, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    bob = make_user("bob", "expert")
    assert review_svc.claim_next(bob) == pair
    with pytest.raises(Conflict) as exc:
        svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [0, 0, 50, 50]}, versions={pair.pk: 1})
    assert exc.value.code == "claimed"
    # the holder may fix their own pair; their claim stays
    svc.adjust_panels(figure.pk, bob, boxes={pair.pk: [0, 0, 50, 50]}, versions={pair.pk: 1})
    assert Claim.objects.get().user == bob


def test_split_makes_new_proposed_pairs_after_the_source(book, expert, queued):
    figure, pairs = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["Plaque.", "Scale."]
    )
    a, b = pairs
    result = svc.split_panel(
        figure.pk, expert, pair_id=a.pk, version=1,
        boxes=[[50, 60, 170, 230], [50, 230, 170, 400]], letters=["a", "c"],
        subcaptions=[None, "Close-up."],
    )  # fmt: skip
    source, new = result
    assert source.pk == a.pk and source.version == 2
    panels = list(Panel.objects.filter(figure=figure).order_by("index"))
    assert [(p.index, p.letter) for p in panels] == [(0, "a"), (1, "c"), (2, "b")]
    assert panels[0].bbox == [50, 60, 170, 230] and panels[0].subcaption == "Plaque."
    assert panels[1].image == "crops/panel.png"  # the old crop until the new one is rendered
    new.refresh_from_db()
    assert new.status == "proposed" and new.version == 1 and new.text == "Close-up."
    assert new.proposed["split_from"] == a.pk and new.proposed["diagnosis"] == "psoriasis"
    assert (new.modality, new.age, new.sex) == ("clinical", 40, "male")
    (created,) = events(new, "pair.panel_split")
    assert created.before is None and created.after["split_from"] == a.pk
    assert created.after["machine_bbox"] is None
    (split,) = events(a, "pair.panel_split")
    assert split.before["panel"]["bbox"] == LEFT and split.after["panel"]["index"] == 0
    assert Pair.objects.get(pk=b.pk).version == 1  # untouched sibling
    assert set(render_states([a.pk, new.pk, b.pk])) == {a.pk, new.pk}


def test_split_of_a_single_panel_figure(book, expert, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX], caption="Fig. 1.1 Two plaques.")
    source, new = svc.split_panel(
        figure.pk, expert, pair_id=pair.pk, version=1, boxes=[LEFT, RIGHT]
    )
    assert source.text == new.text == "Fig. 1.1 Two plaques."
    assert Panel.objects.filter(figure=figure).count() == 2
    with pytest.raises(ServiceError):
        svc.split_panel(figure.pk, expert, pair_id=pair.pk, version=2, boxes=[LEFT])


def test_merge_joins_panels_and_deletes_the_merged_pairs(book, expert, queued):
    figure, pairs = make_figure(
        book, boxes=[LEFT, RIGHT, [310, 60, 400, 400]], letters=["a", "b", "c"],
        subcaptions=["Left half.", "Right half.", "Other."],
    )  # fmt: skip
    a, b, c = pairs
    survivor = svc.merge_panels(
        figure.pk, expert, pair_ids=[b.pk, a.pk], versions={a.pk: 1, b.pk: 1}
    )
    assert survivor.pk == a.pk and survivor.version == 2
    assert not Pair.objects.filter(pk=b.pk).exists()
    panel = Panel.objects.get(pk=a.panel.pk)
    assert panel.bbox == [50, 60, 300, 400] and panel.subcaption == "Left half. Right half."
    assert survivor.text == "Left half. Right half."
    assert [p.index for p in Panel.objects.filter(figure=figure).order_by("index")] == [0, 1]
    (gone,) = events(b, "pair.panel_merged")
    assert gone.after["merged_into"] == a.pk and gone.before["panel"]["bbox"] == RIGHT
    (kept,) = events(a, "pair.panel_merged")
    assert kept.before["panel"]["bbox"] == LEFT and kept.after["panel"]["bbox"] == panel.bbox
    assert Pair.objects.get(pk=c.pk).version == 1


def test_merging_to_one_panel_gives_the_figure_caption(book, expert, queued):
    figure, (a, b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["L.", "R."],
        caption="Fig. 1.1 Both.",
    )  # fmt: skip
    survivor = svc.merge_panels(
        figure.pk, expert, pair_ids=[a.pk, b.pk], versions={a.pk: 1, b.pk: 1}
    )
    assert survivor.text == "Fig. 1.1 Both."
    assert survivor.proposed["text"] == "L."  # the machine's proposal stays as it was


def test_merge_refuses_reviewed_or_released_pairs(book, expert, curator, queued):
    figure, (a, b) = make_figure(book, boxes=[LEFT, RIGHT])
    review_svc.review_pair(b.pk, expert, version=1, action="accept")
    versions = {a.pk: 1, b.pk: 2}
    with pytest.raises(Conflict) as exc:
        svc.merge_panels(figure.pk, expert, pair_ids=[a.pk, b.pk], versions=versions)
    assert exc.value.code == "reviewed" and exc.value.extra["reviewed"] == [b.pk]
    release = Release.objects.create(name="r", version="1.0.0")
    item = ReleaseItem.objects.create(release=release, pair=b, split="train")
    with pytest.raises(Conflict, match="release"):
        svc.merge_panels(figure.pk, curator, pair_ids=[a.pk, b.pk], versions=versions, force=True)
    item.delete()
    svc.merge_panels(figure.pk, curator, pair_ids=[a.pk, b.pk], versions=versions, force=True)
    assert list(Pair.objects.values_list("pk", flat=True)) == [a.pk]


def test_merge_with_a_pair_merged_away_meanwhile_is_stale(book, expert, queued):
    figure, (a, b, c) = make_figure(book, boxes=[LEFT, RIGHT, [310, 60, 400, 400]])
    svc.merge_panels(figure.pk, expert, pair_ids=[a.pk, b.pk], versions={a.pk: 1, b.pk: 1})
    with pytest.raises(Conflict) as exc:
        svc.merge_panels(figure.pk, expert, pair_ids=[b.pk, c.pk], versions={b.pk: 1, c.pk: 1})
    assert exc.value.code == "stale" and exc.value.extra["gone"] == [b.pk]


def test_reassigning_subcaptions_swaps_and_retexts_proposed_pairs(book, expert, queued):
    figure, (a, b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["Scale.", "Plaque."]
    )
    changed = svc.set_subcaptions(
        figure.pk, expert,
        changes={a.pk: {"letter": "b", "subcaption": "Plaque."},
                 b.pk: {"letter": "a", "subcaption": "Scale."}},
        versions={a.pk: 1, b.pk: 1},
    )  # fmt: skip
    assert {p.pk for p in changed} == {a.pk, b.pk}
    a.refresh_from_db()
    assert (a.panel.letter, a.panel.subcaption, a.text, a.version) == ("b", "Plaque.", "Plaque.", 2)
    assert a.proposed["text"] == "Scale."
    (event,) = events(a, "pair.subcaption_changed")
    assert event.before["panel"]["subcaption"] == "Scale."
    assert event.after["panel"]["letter"] == "b"
    assert render_states([a.pk, b.pk]) == {}  # the image did not change
    with pytest.raises(ServiceError, match="share a letter"):
        svc.set_subcaptions(figure.pk, expert, changes={a.pk: {"letter": "a"}}, versions={a.pk: 2})


def test_subcaption_change_keeps_a_reviewed_pairs_text_and_decision(book, expert, queued):
    figure, (a, _b) = make_figure(
        book, boxes=[LEFT, RIGHT], letters=["a", "b"], subcaptions=["Scale.", "Plaque."]
    )
    review_svc.review_pair(
        a.pk, expert, version=1, action="accept", changes={"text": "My own words."}
    )
    svc.set_subcaptions(
        figure.pk, expert, changes={a.pk: {"subcaption": "Plaque, close."}}, versions={a.pk: 2}
    )
    a.refresh_from_db()
    assert a.status == "edited" and a.text == "My own words." and a.version == 3


def test_revert_to_a_panel_event_restores_the_review_state(book, expert, curator, queued):
    figure, (pair,) = make_figure(book, boxes=[FIGURE_BOX])
    svc.adjust_panels(figure.pk, expert, boxes={pair.pk: [60, 70, 290, 390]}, versions={pair.pk: 1})
    review_svc.review_pair(pair.pk, expert, version=2, action="reject", reason="bad_crop")
    (event,) = events(pair, "pair.panel_adjusted")
    reverted = review_svc.revert_pair(pair.pk, curator, event_id=event.pk, version=3)
    assert reverted.status == "proposed" and reverted.text == pair.text


def test_unknown_figure_is_404(expert):
    with pytest.raises(ServiceError) as exc:
        svc.adjust_panels(999, expert, boxes={1: [0, 0, 9, 9]}, versions={1: 1})
    assert exc.value.status == 404
    assert Figure.objects.count() == 0
