"""A pair's history as the review page shows it: who, when, which fields changed, and
whether "revert to this" would mean anything.

"Revert to this" is offered only on an event that set the pair's values (a decision, a
proposal, a panel fix, a revert) and only when going back to the state right after it would
change the pair as it is now: never on ``vqa.drafted``, skips or other events that hold no
state, nor on the state in force. ``services.review.revert_pair`` refuses (409) a revert that
would change nothing, so a stale page cannot slip one in either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.models import Pair, ReviewEvent
from curation.selectors.diffs import FieldChange, field_changes
from curation.selectors.review import ReviewContext
from curation.services.review import EDITABLE, SNAPSHOT

ITEM = "pair"
LABELS = {
    "text": "caption",
    "reject_reason": "reject reason",
    "reject_note": "reject note",
    "box": "panel box",
    "letter": "panel letter",
    "subcaption": "sub-caption",
}
PANEL_KEYS = ("bbox", "letter", "subcaption", "index")
SHOWN = (*SNAPSHOT, "box", "letter", "subcaption")
REOPENED = {"status": Pair.Status.PROPOSED, "reject_reason": "", "reject_note": ""}


@dataclass
class HistoryRow:
    event: ReviewEvent
    changes: list[FieldChange] = field(default_factory=list)
    revertible: bool = False
    # What a revert to this event would change, from the values now to the values then.
    revert_changes: list[FieldChange] = field(default_factory=list)


@dataclass
class PairHistory:
    rows: list[HistoryRow]
    blind: bool
    can_revert: bool


def _flat(state) -> dict:
    """An event's state with the panel's geometry as fields of its own (box, letter, ...)."""
    if not isinstance(state, dict):
        return {}
    flat = {k: v for k, v in state.items() if k in SNAPSHOT}
    panel = state.get("panel")
    if isinstance(panel, dict):
        if "bbox" in panel:
            flat["box"] = [round(float(x), 1) for x in panel["bbox"] or []]
        for key in ("letter", "subcaption"):
            if key in panel:
                flat[key] = panel[key]
    return flat


def _labelled(changes: list[FieldChange]) -> list[FieldChange]:
    return [FieldChange(LABELS.get(c.field, c.field), c.old, c.new, c.segments) for c in changes]


def event_changes(event: ReviewEvent) -> list[FieldChange]:
    """The fields an event changed, old → new. A blind review changes no pair value: it
    shows how the reviewer's values differ from the pair's."""
    after = event.after if isinstance(event.after, dict) else {}
    review = after.get("review")
    if isinstance(review, dict):
        return _labelled(field_changes(after, review, fields=EDITABLE))
    before = _flat(event.before)
    if not before:
        return []
    flat_after = _flat(after)
    return _labelled(field_changes(before, flat_after, fields=[f for f in SHOWN if f in before]))


def value_at(events: list[ReviewEvent], event_id: int, key: str):
    """``key`` of the pair's state right after ``event_id`` (events in id order): from the
    last event up to it that recorded it after, else the first later one that recorded it
    before. The same reading as the revert's (``services.panels``)."""
    for event in reversed(events):
        if event.id <= event_id and isinstance(event.after, dict) and key in event.after:
            return event.after[key]
    for event in events:
        if event.id > event_id and isinstance(event.before, dict) and key in event.before:
            return event.before[key]
    return None


def sets_state(event: ReviewEvent) -> bool:
    """Whether the event recorded the pair's values (so a revert to it can restore them)."""
    after = event.after
    return isinstance(after, dict) and (bool(set(after) & set(SNAPSHOT)) or "panel" in after)


def revert_target(events: list[ReviewEvent], event: ReviewEvent, pair: Pair) -> tuple[dict, dict]:
    """``(now, then)``: the pair's values as they are and as a revert to ``event`` leaves
    them (the review values it recorded, reopened when it recorded no status, and the panel's
    box, letter, sub-caption and place it had right after it)."""
    now = {k: getattr(pair, k) for k in SNAPSHOT}
    panel = pair.panel
    geometry = {"bbox": list(panel.bbox), "letter": panel.letter,
                "subcaption": panel.subcaption, "index": panel.index}  # fmt: skip
    then = {**now, **REOPENED, **{k: v for k, v in event.after.items() if k in SNAPSHOT}}
    then_geometry = dict(geometry)
    old = value_at(events, event.id, "panel")
    if isinstance(old, dict):
        then_geometry.update({k: old[k] for k in PANEL_KEYS if k in old and old[k] is not None})
        then_geometry["bbox"] = list(then_geometry["bbox"])
    return {**now, "panel": geometry}, {**then, "panel": then_geometry}


def pair_history(ctx: ReviewContext, *, can_revert: bool) -> PairHistory:
    """The history block of the review page, newest first (``ctx.events``'s order).

    Reverting is for curators; for them the full trail and the stored pair are read (two
    queries) so "revert to this" is judged on the state as stored, not as a refused form
    typed it. Experts' pages pay nothing extra.
    """
    rows = [HistoryRow(event, changes=event_changes(event)) for event in ctx.events]
    if can_revert:
        pair = Pair.objects.select_related("panel").get(pk=ctx.pair.pk)
        trail = list(
            ReviewEvent.objects.filter(target_type=ITEM, target_id=pair.pk)
            .only("id", "action", "before", "after")
            .order_by("id")
        )
        for row in rows:
            if not sets_state(row.event):
                continue
            now, then = revert_target(trail, row.event, pair)
            if now != then:
                row.revertible = True
                row.revert_changes = _labelled(field_changes(_flat(now), _flat(then), fields=SHOWN))
    return PairHistory(rows=rows, blind=ctx.blind, can_revert=can_revert)
