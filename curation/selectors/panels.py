"""Reads for the panel editor: a figure's panels, their pairs, and whether a crop is re-rendering.

A crop is "re-rendering" while a pair's latest geometry event has no later render event; the
audit trail is the state, so no extra column is needed and a crashed task shows as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.events import EventAction
from curation.models import Figure, Page, Pair, Panel, ReviewEvent

ADJUSTED = EventAction.PAIR_PANEL_ADJUSTED
SPLIT = EventAction.PAIR_PANEL_SPLIT
MERGED = EventAction.PAIR_PANEL_MERGED
SUBCAPTION = EventAction.PAIR_SUBCAPTION_CHANGED
RENDERED = EventAction.PAIR_CROP_RENDERED
RENDER_FAILED = EventAction.PAIR_CROP_FAILED
ADDED = EventAction.PAIR_PANEL_ADDED  # a panel the expert drew where extraction found none
REVERTED = EventAction.PAIR_REVERTED  # a geometry change when it moved the panel's box
GEOMETRY_ACTIONS = (ADJUSTED, SPLIT, MERGED, ADDED)
FIX_ACTIONS = (*GEOMETRY_ACTIONS, SUBCAPTION)

RENDERING = "rendering"
FAILED = "failed"


@dataclass
class PanelRow:
    panel: Panel
    pair: Pair | None
    render: str = ""  # "", "rendering" or "failed"
    machine_bbox: list | None = None


@dataclass
class FigureLayout:
    figure: Figure
    page: Page
    rows: list[PanelRow] = field(default_factory=list)

    @property
    def rendering(self) -> bool:
        return any(row.render == RENDERING for row in self.rows)

    @property
    def failed(self) -> bool:
        return any(row.render == FAILED for row in self.rows)


def render_states(pair_ids) -> dict[int, str]:
    """pair id -> "rendering" or "failed", for pairs whose crop lags their box."""
    states: dict[int, str] = {}
    seen: set[int] = set()
    events = (
        ReviewEvent.objects.filter(
            target_type="pair",
            target_id__in=list(pair_ids),
            action__in=(*GEOMETRY_ACTIONS, REVERTED, RENDERED, RENDER_FAILED),
        )
        .order_by("target_id", "-created_at", "-id")
        .values_list("target_id", "action", "before", "after")
    )
    for target_id, action, before, after in events:
        if target_id in seen or (action == REVERTED and not moved_box(before, after)):
            continue
        seen.add(target_id)
        if action in GEOMETRY_ACTIONS or action == REVERTED:
            states[target_id] = RENDERING
        elif action == RENDER_FAILED:
            states[target_id] = FAILED
    return states


def moved_box(before, after) -> bool:
    """Whether an event's before/after states hold different panel boxes (or a new panel)."""
    new = after.get("panel") if isinstance(after, dict) else None
    if not isinstance(new, dict):
        return False
    old = before.get("panel") if isinstance(before, dict) else None
    return not isinstance(old, dict) or list(old.get("bbox") or []) != list(new.get("bbox") or [])


def machine_bboxes(pair_ids) -> dict[int, list | None]:
    """The box extraction proposed, as the first panel fix of each pair recorded it."""
    found: dict[int, list | None] = {}
    events = (
        ReviewEvent.objects.filter(
            target_type="pair", target_id__in=list(pair_ids), action__in=FIX_ACTIONS
        )
        .order_by("target_id", "created_at", "id")
        .values_list("target_id", "after")
    )
    for target_id, after in events:
        if target_id not in found and isinstance(after, dict) and "machine_bbox" in after:
            found[target_id] = after["machine_bbox"]
    return found


def figure_layout(figure_id: int) -> FigureLayout | None:
    figure = (
        Figure.objects.select_related("page", "textbook", "page__textbook")
        .filter(pk=figure_id)
        .first()
    )
    if figure is None:
        return None
    panels = list(Panel.objects.filter(figure=figure).select_related("pair").order_by("index"))
    pair_ids = [p.pair.pk for p in panels if hasattr(p, "pair")]
    states = render_states(pair_ids)
    machine = machine_bboxes(pair_ids)
    rows = []
    for panel in panels:
        pair = getattr(panel, "pair", None)
        pid = pair.pk if pair else None
        rows.append(
            PanelRow(
                panel=panel,
                pair=pair,
                render=states.get(pid, ""),
                machine_bbox=machine.get(pid, list(panel.bbox)),
            )
        )
    return FigureLayout(figure=figure, page=figure.page, rows=rows)


def gutter_cut(figure_id: int, box: list[float], *, vertical: bool) -> dict | None:
    """Where to split ``box`` of this figure: the white gutter on the page preview nearest
    the middle, or the middle itself with the reason (no preview, no gutter)."""
    from django.core.files.storage import default_storage
    from PIL import Image

    from curation.extract.gutter import cut_box

    figure = Figure.objects.select_related("page").filter(pk=figure_id).first()
    if figure is None:
        return None
    page = figure.page
    start, end = (box[0], box[2]) if vertical else (box[1], box[3])
    middle = round((start + end) / 2, 2)
    if not page.image or not default_storage.exists(page.image):
        return {"cut": middle, "found": False, "message": "No page preview; cut in the middle."}
    with default_storage.open(page.image, "rb") as fh, Image.open(fh) as image:
        image.load()
        cut, gutter = cut_box(image, (page.width, page.height), box, vertical=vertical)
    if not gutter.found:
        return {"cut": cut, "found": False, "message": gutter.reason}
    return {"cut": cut, "found": True, "message": "Cut along the white gutter."}
