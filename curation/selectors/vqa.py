"""Reads for the VQA review page: one image's questions, in a stable order, with history."""

from __future__ import annotations

from dataclasses import dataclass

from curation.models import Pair, ReviewEvent, VQAItem
from curation.selectors.diffs import field_changes, word_diff

SHOWN = ("status", "question", "answer", "reject_reason", "reject_note")


@dataclass
class VQAPage:
    pair: Pair
    items: list[VQAItem]
    previous_id: int | None


def timelines(items: list[VQAItem]) -> None:
    """Give each item its audit trail (``item.timeline``, oldest first), in one query."""
    events: dict[int, list[ReviewEvent]] = {}
    for event in (
        ReviewEvent.objects.filter(target_type="vqaitem", target_id__in=[i.pk for i in items])
        .select_related("actor")
        .order_by("created_at", "id")
    ):
        events.setdefault(event.target_id, []).append(event)
    for item in items:
        item.timeline = events.get(item.pk, [])
        for event in item.timeline:  # what each decision changed, word by word
            before = event.before if isinstance(event.before, dict) else {}
            after = event.after if isinstance(event.after, dict) else {}
            event.changes = field_changes(before, after, fields=[f for f in SHOWN if f in before])


def item_card(item_id: int) -> VQAItem | None:
    """One item as its card shows it (after a decision the card is swapped in place)."""
    item = VQAItem.objects.filter(pk=item_id).first()
    if item is not None:
        timelines([item])
    return item


def vqa_page(pair_id: int) -> VQAPage | None:
    """The pair's items by id: a decision changes a card's status, never its place.

    ``previous_id`` is the image before this one (by id) that has questions, for ``p``.
    """
    pair = Pair.objects.select_related("panel", "panel__figure", "textbook").filter(pk=pair_id)
    pair = pair.first()
    if pair is None:
        return None
    items = list(VQAItem.objects.filter(pair=pair).order_by("id"))
    timelines(items)
    previous = (
        VQAItem.objects.filter(pair_id__lt=pair.pk)
        .order_by("-pair_id")
        .values_list("pair_id", flat=True)
        .first()
    )
    return VQAPage(pair, items, previous)


COMPARED = ("question", "answer")


def conflict_details(item_id: int, post) -> dict:
    """What a refused (stale) decision's page shows beside the stored item: the image, who
    changed the item last and when, and each text field word by word (stored → yours)."""
    item = VQAItem.objects.select_related("pair__panel", "reviewed_by").get(pk=item_id)
    last = (
        ReviewEvent.objects.filter(target_type="vqaitem", target_id=item_id)
        .select_related("actor")
        .order_by("-created_at", "-id")
        .first()
    )
    rows = []
    for name in COMPARED:
        theirs, yours = getattr(item, name), (post.get(name) or "").replace("\r\n", "\n").strip()
        rows.append({"field": name, "theirs": theirs, "yours": yours, "differs": theirs != yours,
                     "segments": word_diff(theirs, yours)})  # fmt: skip
    return {
        "image": item.pair.panel.image,
        "changed_by": last.actor if last is not None else item.reviewed_by,
        "changed_at": last.created_at if last is not None else item.reviewed_at,
        "changed_action": last.action if last is not None else "",
        "rows": rows,
    }
