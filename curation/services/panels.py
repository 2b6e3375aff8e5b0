"""Panel fixes: redraw a panel's box, split a panel into several, merge panels, reassign
sub-captions. Crops are re-rendered from the PDF by ``workers.panels`` after commit.

Every fix locks the figure and the affected pairs, refuses a stale ``version`` with 409, bumps
the versions, and records one ``ReviewEvent`` per pair whose ``before``/``after`` hold the pair's
review snapshot, the panel's geometry (bbox, letter, sub-caption, index, image) and the box the
machine first proposed (``machine_bbox``). ``Pair.proposed`` is never touched.

A fix that changes the image of a pair an expert already decided on needs a curator's ``force``;
the pair then returns to ``proposed`` so that someone reviews the new crop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.db.models import F

from curation import limits
from curation.events import EventAction
from curation.models import Claim, Figure, Modality, Pair, Panel, ReleaseItem, ReviewEvent
from curation.selectors.panels import (
    ADDED,
    ADJUSTED,
    MERGED,
    RENDER_FAILED,
    RENDERED,
    RENDERING,
    REVERTED,
    SPLIT,
    SUBCAPTION,
    machine_bboxes,
    render_states,
)
from curation.services import dispatch
from curation.services.audit import record_event
from curation.services.errors import Conflict, ServiceError
from curation.services.review import SNAPSHOT, claim_of, snapshot
from curation.services.roles import require_role
from skinplatform.accounts.roles import REVIEWERS, STAFF

MIN_SIDE = 4.0  # points; smaller boxes are slips of the mouse
MAX_PANELS = 26
MAX_LETTER = 4
MAX_SUBCAPTION = limits.SUBCAPTION


# --- validation -------------------------------------------------------------------------


def clean_box(value, width: float, height: float) -> list[float]:
    """``[x0, y0, x1, y1]`` in points, clipped to the page, at least ``MIN_SIDE`` each way."""
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise ServiceError("invalid", "A box is four numbers: x0, y0, x1, y1.")
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ServiceError("invalid", "A box is four numbers: x0, y0, x1, y1.") from None
    if any(isinstance(v, bool) for v in value) or not all(
        math.isfinite(v) for v in (x0, y0, x1, y1)
    ):
        raise ServiceError("invalid", "A box is four numbers: x0, y0, x1, y1.")
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        raise ServiceError("invalid", f"A box must be at least {MIN_SIDE:g} points each way.")
    return [round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)]


def _clean_versions(versions: Mapping) -> dict[int, int]:
    try:
        return {int(k): int(v) for k, v in (versions or {}).items()}
    except (TypeError, ValueError):
        raise ServiceError("invalid", "versions maps pair ids to version numbers.") from None


def _clean_ids(ids: Iterable) -> list[int]:
    try:
        return list(dict.fromkeys(int(i) for i in ids))
    except (TypeError, ValueError):
        raise ServiceError("invalid", "Pair ids must be whole numbers.") from None


def _clean_letter(value) -> str:
    letter = str(value or "").strip()
    if len(letter) > MAX_LETTER:
        raise ServiceError("invalid", f"A panel letter has at most {MAX_LETTER} characters.")
    return letter


def _clean_subcaption(value) -> str:
    if not isinstance(value, str):
        raise ServiceError("invalid", "A sub-caption must be text.")
    return limits.check_text("subcaption", value.strip(), MAX_SUBCAPTION, "sub-caption")


OVERLAP_TOLERANCE = 0.5  # points: boxes that share an edge (a split's cut) do not overlap


def overlap_area(a, b) -> float:
    """Area (square points) two boxes share beyond the tolerance; 0 when they only touch."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= OVERLAP_TOLERANCE or h <= OVERLAP_TOLERANCE:
        return 0.0
    return w * h


def refuse_overlaps(boxes: Mapping[str, list], changed: Iterable[str]) -> None:
    """Refuse a layout in which a changed or new box overlaps another panel's box.

    An overlap means one crop holds part of the next panel, which then ships in two pairs.
    ``boxes`` maps a name ("panel b", "the new box") to its box; only pairs involving a name
    in ``changed`` are looked at, so an overlap extraction left elsewhere does not block an
    unrelated fix.
    """
    changed = list(dict.fromkeys(changed))
    names = list(boxes)
    clashes = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if (a in changed or b in changed) and overlap_area(boxes[a], boxes[b]) > 0:
                clashes.append(f"{a} and {b}")
    if clashes:
        raise ServiceError(
            "overlap",
            "Boxes may not overlap, or one crop holds part of the next panel: "
            + "; ".join(clashes)
            + ". Nothing was saved.",
            extra={"overlaps": clashes},
        )


def panel_name(panel: Panel) -> str:
    return f"panel {panel.letter}" if panel.letter else f"panel #{panel.index + 1}"


def named_boxes(panels: Iterable[Panel], replace: Mapping[int, list] | None = None) -> dict:
    """Panel boxes by the name a message uses (``replace``: panel id -> its new box)."""
    replace = replace or {}
    out: dict[str, list] = {}
    for p in panels:
        name = panel_name(p)
        if name in out:  # two panels with one letter: tell them apart by position
            name = f"{name} (#{p.index + 1})"
        out[name] = list(replace.get(p.pk, p.bbox))
    return out


# --- state kept in events ---------------------------------------------------------------


def geometry(panel: Panel) -> dict:
    return {
        "index": panel.index,
        "letter": panel.letter,
        "bbox": list(panel.bbox),
        "subcaption": panel.subcaption,
        "image": panel.image,
    }


def _state(pair: Pair, machine_bbox) -> dict:
    return {**snapshot(pair), "panel": geometry(pair.panel), "machine_bbox": machine_bbox}


def derived_text(figure: Figure, subcaption: str, panel_count: int) -> str:
    """The caption extraction would give a panel (the rule of ``services.ingest``)."""
    return subcaption if panel_count > 1 and subcaption else figure.caption


# --- locking ----------------------------------------------------------------------------


class _Fix:
    """A figure and some of its pairs, locked, with versions checked and 'before' states kept."""

    def __init__(self, figure_id: int, user, pair_ids: list[int], versions: Mapping) -> None:
        self.user = user
        self.figure = (
            Figure.objects.select_for_update().select_related("page").filter(pk=figure_id).first()
        )
        if self.figure is None:
            raise ServiceError("not_found", f"Figure {figure_id} does not exist.", status=404)
        versions = _clean_versions(versions)
        rows = (
            Pair.objects.select_for_update()
            .select_related("panel")
            .filter(pk__in=pair_ids)
            .order_by("panel__index")
        )
        self.pairs: dict[int, Pair] = {p.pk: p for p in rows}
        strangers = [p for p in self.pairs.values() if p.panel.figure_id != self.figure.pk]
        if strangers:
            raise ServiceError("invalid", "Every panel must belong to this figure.")
        unversioned = [pid for pid in pair_ids if pid not in versions]
        if unversioned:
            raise ServiceError("invalid", f"Send the version of pair(s) {unversioned}.")
        missing = [pid for pid in pair_ids if pid not in self.pairs]
        stale = missing or [pid for pid, p in self.pairs.items() if versions[pid] != p.version]
        if stale:
            raise Conflict(
                "stale",
                "Someone changed these panels after you opened them. Look at the current "
                "layout, then redo your fix.",
                extra={
                    "versions": dict(
                        Pair.objects.filter(panel__figure=self.figure).values_list("pk", "version")
                    ),
                    "gone": missing,
                },
            )
        for pid in pair_ids:
            claim = claim_of(pid)
            if claim is not None and claim.user_id != user.pk:
                raise Conflict("claimed", f"{claim.user} is reviewing pair {pid} now.")
        # The first fix of a pair records the box extraction proposed; later ones repeat it.
        self.machine = machine_bboxes(pair_ids)
        for pid, pair in self.pairs.items():
            self.machine.setdefault(pid, list(pair.panel.bbox))
        self.before = {pid: _state(p, self.machine[pid]) for pid, p in self.pairs.items()}

    def ordered(self) -> list[Pair]:
        return sorted(self.pairs.values(), key=lambda p: p.panel.index)

    def require_unreviewed(self, pairs: Iterable[Pair], force: bool) -> None:
        """A fix that changes a decided pair's image needs a curator's force."""
        decided = [p.pk for p in pairs if p.status != Pair.Status.PROPOSED]
        if not decided:
            return
        if not force:
            raise Conflict(
                "reviewed",
                f"Pair(s) {decided} were already reviewed; a curator can force the fix, which "
                "sends them back for review.",
                extra={"reviewed": decided},
            )
        require_role(self.user, STAFF, "change panels that were already reviewed")

    def reopen(self, pair: Pair) -> None:
        if pair.status != Pair.Status.PROPOSED:
            pair.status = Pair.Status.PROPOSED
            pair.reject_reason, pair.reject_note = "", ""

    def record(self, pair: Pair, action: str, note: str = "") -> None:
        pair.version += 1
        pair.save()
        record_event(
            self.user,
            pair,
            action,
            before=self.before.get(pair.pk),
            after=_state(pair, self.machine.get(pair.pk)),
            note=note,
        )

    def grow_figure(self, boxes: Iterable[list[float]]) -> bool:
        """Widen the figure's box to hold its panels; True when it changed."""
        old = list(self.figure.bbox)
        new = list(old)
        for b in boxes:
            new = [min(new[0], b[0]), min(new[1], b[1]), max(new[2], b[2]), max(new[3], b[3])]
        if new == old:
            return False
        self.figure.bbox = new
        self.figure.save(update_fields=["bbox", "updated_at"])
        record_event(
            self.user,
            self.figure,
            EventAction.FIGURE_BBOX_GROWN,
            before={"bbox": old},
            after={"bbox": new},
        )
        return True


def _renumber(figure: Figure, order: list[Panel]) -> None:
    """Give ``order`` the indexes 0..n-1 without tripping the unique (figure, index) rule."""
    Panel.objects.filter(figure=figure).update(index=F("index") + 10000)
    for index, panel in enumerate(order):
        panel.index = index
        Panel.objects.filter(pk=panel.pk).update(index=index)


def _retext(pair: Pair, old_derived: str, new_derived: str) -> None:
    """A proposed pair whose text was the derived caption follows the new derivation."""
    if pair.status == Pair.Status.PROPOSED and pair.text == old_derived:
        pair.text = new_derived


# --- the fixes --------------------------------------------------------------------------


def adjust_panels(
    figure_id: int,
    user,
    *,
    boxes: Mapping,
    versions: Mapping,
    force: bool = False,
    new_boxes: Iterable = (),
) -> list[Pair]:
    """Redraw panel boxes and add panels the machine missed, in one transaction.

    ``boxes`` maps pair id -> [x0, y0, x1, y1] in PDF points; each of ``new_boxes`` becomes a
    new panel with a proposed pair (``pair.panel_added``). A result in which a changed or new
    box overlaps another panel is refused, and nothing is stored. Returns the changed pairs,
    then the new ones.
    """
    require_role(user, REVIEWERS, "fix panels")
    new_boxes = list(new_boxes or [])
    if not boxes and not new_boxes:
        raise ServiceError("invalid", "No box changed.")
    ids = _clean_ids(boxes.keys())
    with transaction.atomic():
        fix = _Fix(figure_id, user, ids, versions)
        page = fix.figure.page
        new = {int(k): clean_box(v, page.width, page.height) for k, v in boxes.items()}
        added = [clean_box(b, page.width, page.height) for b in new_boxes]
        changed = [p for p in fix.ordered() if list(p.panel.bbox) != new[p.pk]]
        if not changed and not added:
            raise ServiceError("invalid", "No box changed.")
        count = Panel.objects.filter(figure=fix.figure).count()
        if added and count + len(added) > MAX_PANELS:
            raise ServiceError("invalid", f"A figure has at most {MAX_PANELS} panels.")
        panels = list(Panel.objects.filter(figure=fix.figure).order_by("index"))
        layout = named_boxes(panels, {p.panel.pk: new[p.pk] for p in changed})
        moved = {p.panel.pk for p in changed}
        names = [n for n, p in zip(layout, panels, strict=True) if p.pk in moved]
        for i, box in enumerate(added, start=1):
            name = "the new box" if len(added) == 1 else f"new box {i}"
            layout[name] = box
            names.append(name)
        refuse_overlaps(layout, names)
        fix.require_unreviewed(changed, force)
        for pair in changed:
            pair.panel.bbox = new[pair.pk]
            pair.panel.save(update_fields=["bbox"])
            fix.reopen(pair)
            fix.record(pair, ADJUSTED)
        created = _add_panels(fix, added, count)
        grown = fix.grow_figure([*(new[p.pk] for p in changed), *added])
        dispatch.enqueue_render(fix.figure.pk, [p.pk for p in (*changed, *created)], grown)
    return [*changed, *created]


def _add_panels(fix: _Fix, boxes: list[list[float]], count_before: int) -> list[Pair]:
    """New panels (after the others, in reading order) with proposed pairs.

    A new pair starts with the values and machine proposal of the figure's first pair (the
    same figure: the same caption, modality and demographics), as a split's new pairs do, its
    text derived as extraction would; the crop is the figure's until the render task cuts
    the new one.
    """
    if not boxes:
        return []
    figure = fix.figure
    siblings = list(Panel.objects.filter(figure=figure).select_related("pair").order_by("index"))
    model = next((getattr(p, "pair", None) for p in siblings if hasattr(p, "pair")), None)
    count_after = count_before + len(boxes)
    top = max((p.index for p in siblings), default=-1)
    base = dict(model.proposed or {}) if model else {"modality": figure.modality}
    base.pop("split_from", None)
    created = []
    for i, box in enumerate(boxes, start=1):
        panel = Panel.objects.create(
            figure=figure,
            index=top + i,
            bbox=box,
            image=figure.image or (siblings[0].image if siblings else ""),
        )
        text = derived_text(figure, "", count_after)
        proposed = {**base, "text": text}
        values = (
            {f: getattr(model, f) for f in ("modality", "diagnosis", "age", "sex")}
            if model
            else {"modality": figure.modality or Modality.OTHER}
        )
        pair = Pair.objects.create(
            panel=panel,
            textbook_id=figure.textbook_id,
            status=Pair.Status.PROPOSED,
            text=text,
            flags=list(model.flags) if model else [],
            proposed=proposed,
            **values,
        )
        record_event(
            fix.user,
            pair,
            ADDED,
            after={**_state(pair, None), "added": True},
            note="a panel the expert drew",
        )
        created.append(pair)
    return created


def split_panel(
    figure_id: int,
    user,
    *,
    pair_id: int,
    boxes: list,
    version: int,
    letters: list | None = None,
    subcaptions: list | None = None,
    force: bool = False,
) -> list[Pair]:
    """Cut one panel into several: the first box stays with the pair, the rest become new pairs.

    New pairs start ``proposed`` with the split pair's values (and its machine proposal, marked
    ``split_from``), their text derived from their sub-caption or the figure caption.
    """
    require_role(user, REVIEWERS, "fix panels")
    if not isinstance(boxes, list | tuple) or len(boxes) < 2:
        raise ServiceError("invalid", "A split needs at least two boxes.")
    letters = list(letters or [])
    subcaptions = list(subcaptions or [])
    with transaction.atomic():
        fix = _Fix(figure_id, user, [int(pair_id)], {int(pair_id): version})
        source = fix.pairs[int(pair_id)]
        page = fix.figure.page
        clean = [clean_box(b, page.width, page.height) for b in boxes]
        siblings = list(Panel.objects.filter(figure=fix.figure).order_by("index"))
        if len(siblings) - 1 + len(clean) > MAX_PANELS:
            raise ServiceError("invalid", f"A figure has at most {MAX_PANELS} panels.")
        layout = named_boxes(p for p in siblings if p.pk != source.panel.pk)
        parts = [f"part {i} of the split" for i in range(1, len(clean) + 1)]
        layout.update(zip(parts, clean, strict=True))
        refuse_overlaps(layout, parts)
        fix.require_unreviewed([source], force)
        count_before = len(siblings)
        count_after = count_before - 1 + len(clean)
        panel = source.panel
        old_derived = derived_text(fix.figure, panel.subcaption, count_before)

        def pick(values: list, i: int, default: str) -> str:
            return values[i] if i < len(values) and values[i] is not None else default

        panel.bbox = clean[0]
        panel.letter = _clean_letter(pick(letters, 0, panel.letter))
        panel.subcaption = _clean_subcaption(pick(subcaptions, 0, panel.subcaption))
        panel.save(update_fields=["bbox", "letter", "subcaption"])
        fix.reopen(source)
        _retext(source, old_derived, derived_text(fix.figure, panel.subcaption, count_after))

        created: list[Panel] = []
        base = max(p.index for p in siblings) + 1
        for i, box in enumerate(clean[1:], start=1):
            created.append(
                Panel.objects.create(
                    figure=fix.figure,
                    index=base + i,
                    letter=_clean_letter(pick(letters, i, "")),
                    bbox=box,
                    subcaption=_clean_subcaption(pick(subcaptions, i, "")),
                    image=panel.image,  # the old crop until the task renders the new one
                )
            )
        order = []
        for sibling in siblings:
            order.append(panel if sibling.pk == panel.pk else sibling)
            if sibling.pk == panel.pk:
                order.extend(created)
        _renumber(fix.figure, order)
        fix.record(source, SPLIT, note=f"split into {len(clean)} panels")

        new_pairs = []
        for new_panel in created:
            text = derived_text(fix.figure, new_panel.subcaption, count_after)
            proposed = {**(source.proposed or {}), "text": text, "split_from": source.pk}
            pair = Pair.objects.create(
                panel=new_panel,
                textbook_id=source.textbook_id,
                status=Pair.Status.PROPOSED,
                text=text,
                modality=source.modality,
                diagnosis=source.diagnosis,
                age=source.age,
                sex=source.sex,
                flags=list(source.flags),
                proposed=proposed,
            )
            record_event(
                user,
                pair,
                SPLIT,
                after={**_state(pair, None), "split_from": source.pk},
                note=f"split from pair {source.pk}",
            )
            new_pairs.append(pair)
        grown = fix.grow_figure(clean)
        dispatch.enqueue_render(fix.figure.pk, [source.pk, *(p.pk for p in new_pairs)], grown)
    return [source, *new_pairs]


def merge_panels(
    figure_id: int, user, *, pair_ids: list, versions: Mapping, force: bool = False
) -> Pair:
    """Join panels into one spanning them all; the first (in reading order) keeps its pair.

    The other pairs are deleted (their history stays in the audit table). Pairs already
    reviewed are refused unless a curator forces; pairs in a release are never deleted.
    """
    require_role(user, REVIEWERS, "fix panels")
    ids = _clean_ids(pair_ids or [])
    if len(ids) < 2:
        raise ServiceError("invalid", "Choose at least two panels to merge.")
    with transaction.atomic():
        fix = _Fix(figure_id, user, ids, versions)
        ordered = fix.ordered()
        fix.require_unreviewed(ordered, force)
        released = list(
            ReleaseItem.objects.filter(pair_id__in=ids).values_list("pair_id", flat=True)
        )
        if released:
            raise Conflict(
                "released", f"Pair(s) {sorted(set(released))} are part of a release; keep them."
            )
        survivor, gone = ordered[0], ordered[1:]
        siblings = list(Panel.objects.filter(figure=fix.figure).order_by("index"))
        count_after = len(siblings) - len(gone)
        panel = survivor.panel
        old_derived = derived_text(fix.figure, panel.subcaption, len(siblings))
        boxes = [p.panel.bbox for p in ordered]
        merged = {p.panel.pk for p in ordered}
        panel.bbox = [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        layout = named_boxes(p for p in siblings if p.pk not in merged)
        layout["the merged box"] = list(panel.bbox)
        refuse_overlaps(layout, ["the merged box"])
        parts = [p.panel.subcaption for p in ordered if p.panel.subcaption]
        panel.subcaption = " ".join(parts)
        panel.save(update_fields=["bbox", "subcaption"])
        for pair in gone:
            record_event(
                user,
                pair,
                MERGED,
                before=fix.before[pair.pk],
                after={
                    "merged_into": survivor.pk,
                    "machine_bbox": fix.machine.get(pair.pk),
                    "proposed": pair.proposed,  # so that a revert can bring the pair back
                },
                note=f"merged into pair {survivor.pk}",
            )
        gone_ids = [p.pk for p in gone]
        Claim.objects.filter(item_type="pair", item_id__in=gone_ids).delete()
        Panel.objects.filter(pair__pk__in=gone_ids).delete()
        fix.reopen(survivor)
        _retext(survivor, old_derived, derived_text(fix.figure, panel.subcaption, count_after))
        _renumber(fix.figure, list(Panel.objects.filter(figure=fix.figure).order_by("index")))
        panel.refresh_from_db(fields=["index"])
        fix.record(survivor, MERGED, note=f"merged with pair(s) {gone_ids}")
        dispatch.enqueue_render(fix.figure.pk, [survivor.pk], False)
    return survivor


def set_subcaptions(figure_id: int, user, *, changes: Mapping, versions: Mapping) -> list[Pair]:
    """Reassign letters and sub-captions: ``changes`` maps pair id -> {letter, subcaption}.

    Swapping two panels' sub-captions is one call with both. The image does not change, so
    reviewed pairs keep their decision; proposed pairs whose text was the derived caption
    follow the new sub-caption.
    """
    require_role(user, REVIEWERS, "fix panels")
    if not changes:
        raise ServiceError("invalid", "No sub-caption changed.")
    ids = _clean_ids(changes.keys())
    wanted = {}
    for key, value in changes.items():
        if not isinstance(value, Mapping):
            raise ServiceError("invalid", "Each change is {letter, subcaption}.")
        wanted[int(key)] = value
    with transaction.atomic():
        fix = _Fix(figure_id, user, ids, versions)
        count = Panel.objects.filter(figure=fix.figure).count()
        changed = []
        for pair in fix.ordered():
            panel = pair.panel
            letter = _clean_letter(wanted[pair.pk].get("letter", panel.letter))
            subcaption = _clean_subcaption(wanted[pair.pk].get("subcaption", panel.subcaption))
            if (letter, subcaption) == (panel.letter, panel.subcaption):
                continue
            old_derived = derived_text(fix.figure, panel.subcaption, count)
            panel.letter, panel.subcaption = letter, subcaption
            panel.save(update_fields=["letter", "subcaption"])
            _retext(pair, old_derived, derived_text(fix.figure, subcaption, count))
            changed.append(pair)
        if not changed:
            raise ServiceError("invalid", "No sub-caption changed.")
        letters = [
            letter
            for letter in Panel.objects.filter(figure=fix.figure).values_list("letter", flat=True)
            if letter
        ]
        if len(letters) != len(set(letters)):
            raise ServiceError("invalid", "Two panels of a figure cannot share a letter.")
        for pair in changed:
            fix.record(pair, SUBCAPTION)
    return changed


def request_render(figure_id: int, user) -> list[int]:
    """Queue the crops of this figure that are re-rendering or failed again (no new event)."""
    require_role(user, REVIEWERS, "fix panels")
    ids = list(Pair.objects.filter(panel__figure_id=figure_id).values_list("pk", flat=True))
    lagging = sorted(render_states(ids))
    if lagging:
        with transaction.atomic():
            dispatch.enqueue_render(figure_id, lagging, False)
    return lagging


# --- reverting a pair to an earlier state -------------------------------------------------


class _History:
    """One pair's audit trail, read as its state at any earlier moment (events in id order)."""

    def __init__(self, pair_id: int) -> None:
        self.pair_id = pair_id
        self.events = list(
            ReviewEvent.objects.filter(target_type="pair", target_id=pair_id).order_by("id")
        )

    def value_at(self, event_id: int, key: str):
        """``key`` of the state right after ``event_id``: from the last event up to it that
        recorded it after, else from the first later event that recorded it before."""
        for event in reversed(self.events):
            if event.id <= event_id and isinstance(event.after, dict) and key in event.after:
                return event.after[key]
        for event in self.events:
            if event.id > event_id and isinstance(event.before, dict) and key in event.before:
                return event.before[key]
        return None

    def existed_at(self, event_id: int, source: _History) -> bool:
        """False once merged away (or removed by a revert), and before a split created it.

        A split records the source pair's event before its new pairs' ones: a new pair counts
        as created at the source's split event, so "right after the split" includes it.
        """
        source_splits = [e.id for e in source.events if e.action == SPLIT]

        def when(e: ReviewEvent) -> int:
            if (
                e.action == SPLIT
                and isinstance(e.after, dict)
                and e.after.get("split_from") == source.pair_id
            ):
                return max((i for i in source_splits if i < e.id), default=e.id)
            return e.id

        upto = [e for e in self.events if when(e) <= event_id]
        if upto:
            return not (isinstance(upto[-1].after, dict) and "merged_into" in upto[-1].after)
        first = self.events[0] if self.events else None
        return not (
            first is not None
            and first.action == SPLIT
            and isinstance(first.after, dict)
            and "split_from" in first.after
        )

    def proposal(self) -> dict | None:
        for event in reversed(self.events):
            if isinstance(event.after, dict) and isinstance(event.after.get("proposed"), dict):
                return event.after["proposed"]
            if (
                event.action in (EventAction.PAIR_PROPOSED, EventAction.PAIR_REPROPOSED)
                and event.after
            ):
                return event.after
        return None


def _linked_pair_ids(history: _History) -> list[int]:
    """Pairs split off this one, or merged into it, at any time (since it exists)."""
    pair_id = history.pair_id
    events = ReviewEvent.objects.filter(target_type="pair")
    if history.events:  # the created_at index keeps this to the pair's lifetime
        events = events.filter(created_at__gte=history.events[0].created_at)
    split = events.filter(action=SPLIT, after__split_from=pair_id).values_list(
        "target_id", flat=True
    )
    merged = events.filter(action__in=(MERGED, REVERTED), after__merged_into=pair_id).values_list(
        "target_id", flat=True
    )
    return sorted({*split, *merged} - {pair_id})


def lock_figure_of(pair_id: int) -> Figure | None:
    """Lock the figure of a pair first, in the order panel fixes lock (figure, then pairs)."""
    figure_id = Panel.objects.filter(pair__pk=pair_id).values_list("figure_id", flat=True).first()
    if figure_id is None:
        return None
    return Figure.objects.select_for_update().filter(pk=figure_id).first()


def pair_state(pair: Pair) -> dict:
    """The state a revert records: review values, panel geometry and the machine's box."""
    return _state(pair, machine_bboxes([pair.pk]).get(pair.pk))


def revert_layout(pair: Pair, event: ReviewEvent, user, figure: Figure) -> str:
    """Give ``pair``'s panel the box, letter and sub-caption it had right after ``event``, and
    put back the figure's layout around it: pairs split off it since are removed again, pairs
    merged into it since come back (with their ids, state and history). Crops whose box moved
    are re-rendered by the task panel fixes use.

    Called by ``review.revert_pair`` inside its transaction, with the figure and the pair
    locked. Returns a note saying what changed besides the review values.
    """
    notes: list[str] = []
    render: list[int] = []
    wanted_index: dict[int, int] = {}  # panel id -> index it had then

    panel = pair.panel
    own = _History(pair.pk)
    geometry = own.value_at(event.id, "panel")
    if isinstance(geometry, dict):
        old_box = list(panel.bbox)
        panel.bbox = list(geometry.get("bbox") or panel.bbox)
        panel.letter = geometry.get("letter", panel.letter)
        panel.subcaption = geometry.get("subcaption", panel.subcaption)
        panel.save(update_fields=["bbox", "letter", "subcaption"])
        if "index" in geometry:
            wanted_index[panel.pk] = geometry["index"]
        if list(panel.bbox) != old_box:
            render.append(pair.pk)
            notes.append("panel box restored")

    for linked_id in _linked_pair_ids(own):
        history = _History(linked_id)
        then = history.existed_at(event.id, own)
        current = (
            Pair.objects.select_for_update().select_related("panel").filter(pk=linked_id).first()
        )
        if current is not None and current.panel.figure_id != figure.pk:
            continue
        if current is not None and not then:
            _remove_for_revert(current, pair, event, user)
            notes.append(f"pair {linked_id} removed")
        elif current is None and then:
            restored = _restore_for_revert(linked_id, history, pair, event, user, figure)
            if restored is not None:
                panel_id, index = restored
                wanted_index[panel_id] = index
                render.append(linked_id)
                notes.append(f"pair {linked_id} restored")

    siblings = list(Panel.objects.filter(figure=figure).order_by("index"))
    order = sorted(
        siblings,
        key=lambda p: (wanted_index.get(p.pk, p.index), p.pk not in wanted_index, p.index),
    )
    if [p.pk for p in order] != [p.pk for p in siblings] or any(
        p.index != i for i, p in enumerate(order)
    ):
        _renumber(figure, order)
        panel.refresh_from_db(fields=["index"])
    if render:
        dispatch.enqueue_render(figure.pk, render, False)
    return "; ".join(notes)


def _remove_for_revert(linked: Pair, pair: Pair, event: ReviewEvent, user) -> None:
    claim = claim_of(linked.pk)
    if claim is not None and claim.user_id != user.pk:
        raise Conflict("claimed", f"{claim.user} is reviewing pair {linked.pk} now.")
    if ReleaseItem.objects.filter(pair_id=linked.pk).exists():
        raise Conflict("released", f"Pair {linked.pk} is part of a release; keep it.")
    machine = machine_bboxes([linked.pk]).get(linked.pk)
    record_event(
        user,
        linked,
        REVERTED,
        before=_state(linked, machine),
        after={"merged_into": pair.pk, "machine_bbox": machine, "proposed": linked.proposed},
        note=f"removed: pair {pair.pk} reverted to the state after event {event.pk}",
    )
    Claim.objects.filter(item_type="pair", item_id=linked.pk).delete()
    Panel.objects.filter(pk=linked.panel_id).delete()  # the pair goes with its panel


def _restore_for_revert(
    linked_id: int, history: _History, pair: Pair, event: ReviewEvent, user, figure: Figure
) -> tuple[int, int] | None:
    """Bring back a pair merged away (or removed by a revert) since ``event``, as it was when
    it went: its review values and panel from the ``before`` of that event. Its own history
    up to then is its own and stays; returns (its new panel's id, the index it had)."""
    gone = history.events[-1] if history.events else None
    state = gone.before if gone is not None and isinstance(gone.before, dict) else {}
    geometry = state.get("panel")
    if not isinstance(geometry, dict) or not geometry.get("bbox"):
        return None  # nothing recorded where it was: leave it gone
    values = {"status": Pair.Status.PROPOSED, "reject_reason": "", "reject_note": ""}
    values.update({k: v for k, v in state.items() if k in SNAPSHOT})
    top = Panel.objects.filter(figure=figure).order_by("-index").values_list("index", flat=True)
    panel = Panel.objects.create(
        figure=figure,
        index=(top.first() or 0) + 1,
        letter=geometry.get("letter", ""),
        bbox=list(geometry["bbox"]),
        subcaption=geometry.get("subcaption", ""),
        image=geometry.get("image") or pair.panel.image,
    )
    proposed = history.proposal() or {**(pair.proposed or {}), "text": values.get("text", "")}
    restored = Pair.objects.create(
        pk=linked_id,  # the same id, so its history and reviews stay its own
        panel=panel,
        textbook_id=figure.textbook_id,
        proposed=proposed,
        version=len(history.events) + 2,  # above any version a stale page of it may hold
        **values,
    )
    record_event(
        user,
        restored,
        REVERTED,
        before=gone.after if isinstance(gone.after, dict) else None,
        after=_state(restored, state.get("machine_bbox")),
        note=f"restored: pair {pair.pk} reverted to the state after event {event.pk}",
    )
    return panel.pk, geometry.get("index", panel.index)


# --- what the render task calls ---------------------------------------------------------


def crop_job(figure_id: int, pair_ids: Iterable[int]) -> dict | None:
    """What the task renders: the book file, the page, and the current box of each pair."""
    figure = Figure.objects.select_related("textbook", "page").filter(pk=figure_id).first()
    if figure is None:
        return None
    boxes = dict(
        Pair.objects.filter(pk__in=list(pair_ids), panel__figure=figure).values_list(
            "pk", "panel__bbox"
        )
    )
    return {
        "file": figure.textbook.file,
        "sha256": figure.textbook.sha256,
        "page": figure.page.number,
        "figure_bbox": list(figure.bbox),
        "boxes": {pid: list(b) for pid, b in boxes.items()},
    }


def apply_crops(
    figure_id: int, crops: Mapping[int, tuple[list, str]], figure_crop: tuple[list, str] | None
) -> int:
    """Store rendered crops whose box is still current; returns how many changed.

    A crop of a box that has since been redrawn is dropped (the later fix queued its own
    render), and running the same job twice changes nothing the second time.
    """
    applied = 0
    with transaction.atomic():
        figure = Figure.objects.select_for_update().filter(pk=figure_id).first()
        if figure is None:
            return 0
        pairs = list(
            Pair.objects.select_for_update()
            .select_related("panel")
            .filter(pk__in=list(crops), panel__figure=figure)
        )
        states = render_states([p.pk for p in pairs])
        machine = machine_bboxes([p.pk for p in pairs])
        for pair in pairs:
            bbox, path = crops[pair.pk]
            panel = pair.panel
            if list(panel.bbox) != list(bbox):
                continue
            if panel.image == path and pair.pk not in states:
                continue
            before = _state(pair, machine.get(pair.pk))
            panel.image = path
            panel.save(update_fields=["image"])
            record_event(
                None, pair, RENDERED, before=before, after=_state(pair, machine.get(pair.pk))
            )
            applied += 1
        if figure_crop is not None:
            bbox, path = figure_crop
            if list(figure.bbox) == list(bbox) and figure.image != path:
                old = figure.image
                figure.image = path
                figure.save(update_fields=["image", "updated_at"])
                record_event(
                    None, figure, EventAction.FIGURE_CROP_RENDERED, before={"image": old},
                    after={"image": path, "bbox": list(bbox)},
                )  # fmt: skip
                applied += 1
    return applied


def crops_failed(figure_id: int, pair_ids: Iterable[int], message: str) -> int:
    """Mark crops that are still re-rendering as failed, so the page says so."""
    ids = list(pair_ids)
    with transaction.atomic():
        pairs = list(
            Pair.objects.select_for_update()
            .select_related("panel")
            .filter(pk__in=ids, panel__figure_id=figure_id)
        )
        states = render_states(ids)
        machine = machine_bboxes(ids)
        failed = 0
        for pair in pairs:
            if states.get(pair.pk) != RENDERING:
                continue
            state = _state(pair, machine.get(pair.pk))
            record_event(None, pair, RENDER_FAILED, before=state, after=state, note=message[:500])
            failed += 1
    return failed
