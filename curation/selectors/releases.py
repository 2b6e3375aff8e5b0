"""Reads for releases: the pairs a filter selects, streamed as plain records in batches."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from datetime import date

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from curation.models import CropImage, Pair, Release, ReleaseItem, Review, Textbook, VQAItem
from curation.release import BookInfo, GroupInfo, PairRecord, VQARecord, diff_members
from curation.release.diff import ReleaseDiff

#: VQA items that ship: accepted or edited go to vqa.jsonl; edited and rejected can give a
#: preference pair (expert text vs the LLM draft).
VQA_SHIPPED = (VQAItem.Status.ACCEPTED, VQAItem.Status.EDITED, VQAItem.Status.REJECTED)
VQA_IN_SFT = (VQAItem.Status.ACCEPTED, VQAItem.Status.EDITED)
BATCH = 2000


def releases() -> QuerySet[Release]:
    return Release.objects.select_related("parent", "created_by")


def _review_count():
    reviews = (
        Review.objects.filter(item_type="pair", item_id=OuterRef("pk"))
        .order_by()
        .values("item_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(reviews, output_field=IntegerField()), Value(0))


def pairs_matching(spec: dict) -> QuerySet[Pair]:
    """Pairs selected by a normalised filter (see services.releases.normalize_filter)."""
    qs = Pair.objects.filter(status__in=spec["statuses"])
    if spec.get("modalities"):
        qs = qs.filter(modality__in=spec["modalities"])
    if spec.get("books"):
        qs = qs.filter(textbook_id__in=spec["books"])
    if spec.get("reviewed_from"):
        qs = qs.filter(reviewed_at__date__gte=date.fromisoformat(spec["reviewed_from"]))
    if spec.get("reviewed_to"):
        qs = qs.filter(reviewed_at__date__lte=date.fromisoformat(spec["reviewed_to"]))
    if spec.get("min_reviews"):
        qs = qs.annotate(review_count=_review_count()).filter(review_count__gte=spec["min_reviews"])
    return qs


def preview_counts(spec: dict) -> dict:
    """What a release cut with ``spec`` would hold, counted in a few aggregate queries."""
    pairs = pairs_matching(spec)
    by_modality = dict(
        pairs.order_by()
        .values_list("modality")
        .annotate(n=Count("id"))
        .values_list("modality", "n")
    )
    by_book_ids = dict(
        pairs.order_by()
        .values_list("textbook_id")
        .annotate(n=Count("id"))
        .values_list("textbook_id", "n")
    )
    titles = dict(Textbook.objects.filter(pk__in=by_book_ids).values_list("pk", "title"))
    vqa = VQAItem.objects.filter(pair__in=pairs.values("pk"))
    agg = vqa.aggregate(
        vqa=Count("id", filter=Q(status__in=VQA_IN_SFT)),
        corrected=Count(
            "id", filter=Q(status__in=(VQAItem.Status.EDITED, VQAItem.Status.REJECTED))
        ),
    )
    return {
        "pairs": sum(by_modality.values()),
        "by_modality": dict(sorted(by_modality.items())),
        "by_book": sorted(
            ({"id": b, "title": titles.get(b, "?"), "pairs": n} for b, n in by_book_ids.items()),
            key=lambda row: row["title"],
        ),
        "vqa": agg["vqa"],
        "preference_candidates": agg["corrected"],
    }


def group_infos(spec: dict) -> Iterator[GroupInfo]:
    """The splitter's input: one small tuple per selected pair, with its leak keys."""
    cluster = CropImage.objects.filter(image=OuterRef("panel__image")).values("cluster")[:1]
    rows = (
        pairs_matching(spec)
        .annotate(dup_cluster=Subquery(cluster))
        .order_by("id")
        .values_list(
            "id", "panel__figure_id", "textbook__sha256", "modality", "panel__image",
            "dup_cluster", "textbook__work_id",
        )
    )  # fmt: skip
    for pair_id, figure_id, book_sha, modality, image, dup, work in rows.iterator(chunk_size=2000):
        yield GroupInfo(
            pair_id=pair_id,
            figure_id=figure_id,
            book_key=book_sha,
            modality=modality,
            image_sha=posixpath.splitext(posixpath.basename(image))[0],
            cluster=dup or "",
            work_key=str(work) if work else "",
        )


def splits_of(release: Release | None) -> dict[int, str]:
    if release is None:
        return {}
    return dict(ReleaseItem.objects.filter(release=release).values_list("pair_id", "split"))


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _vqa_record(q: dict) -> VQARecord:
    draft = q["draft"] if isinstance(q["draft"], dict) else {}
    return VQARecord(
        id=q["id"],
        pair_id=q["pair_id"],
        question_type=q["question_type"],
        question=q["question"],
        answer=q["answer"],
        status=q["status"],
        generator=q["generator"] or {},
        prompt_version=q["prompt_version"],
        draft_question=str(draft.get("question", "")),
        draft_answer=str(draft.get("answer", "")),
    )


_PAIR_FIELDS = (
    "id", "text", "modality", "diagnosis", "age", "sex", "flags", "status", "proposed",
    "reviewed_at", "reviews", "textbook_id", "panel__image", "panel__index",
    "panel__letter", "panel__figure_id", "panel__figure__label",
    "panel__figure__page__number",
)  # fmt: skip
_VQA_FIELDS = (
    "id", "pair_id", "question_type", "question", "answer", "status", "generator",
    "prompt_version", "draft",
)  # fmt: skip


def iter_pair_records(spec: dict, chunk_size: int = BATCH) -> Iterator[PairRecord]:
    """Selected pairs in id order, each with its VQA items.

    Two streamed reads (server-side cursors on Postgres), merge-joined here on the pair id:
    the pairs in id order and their shipped VQA items in (pair id, id) order. Each read runs
    once. Keyset pages (``id > last LIMIT n``) made the database redo the selection's join and
    sort for every page, and the build grew with the square of the release (4x the pairs took
    8x the time). Memory stays constant: a chunk of rows from each cursor at a time.
    """
    books: dict[int, BookInfo] = {}
    selected = pairs_matching(spec)
    pairs = (
        selected.annotate(reviews=_review_count())
        .order_by("id")
        .values(*_PAIR_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    vqa = (
        VQAItem.objects.filter(pair_id__in=selected.values("pk"), status__in=VQA_SHIPPED)
        .order_by("pair_id", "id")
        .values(*_VQA_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    pending = next(vqa, None)
    for r in pairs:
        items = []
        while pending is not None and pending["pair_id"] <= r["id"]:
            if pending["pair_id"] == r["id"]:
                items.append(_vqa_record(pending))
            pending = next(vqa, None)
        book = books.get(r["textbook_id"])
        if book is None:
            book = BookInfo(
                **Textbook.objects.values("id", "title", "edition", "sha256").get(
                    pk=r["textbook_id"]
                )
            )
            books[book.id] = book
        proposed = r["proposed"] if isinstance(r["proposed"], dict) else {}
        yield PairRecord(
            id=r["id"],
            image=r["panel__image"],
            caption=r["text"],
            modality=r["modality"],
            book=book,
            page=r["panel__figure__page__number"],
            figure_id=r["panel__figure_id"],
            figure_label=r["panel__figure__label"],
            panel_index=r["panel__index"],
            panel_letter=r["panel__letter"],
            diagnosis=r["diagnosis"],
            age=r["age"],
            sex=r["sex"],
            flags=tuple(r["flags"] or ()),
            status=r["status"],
            machine_caption=str(proposed.get("text", "")),
            reviewed_at=_iso(r["reviewed_at"]),
            reviews=r["reviews"],
            vqa=tuple(items),
        )


def members(release: Release) -> dict[int, tuple[str, str]]:
    return {
        pair_id: (split, fingerprint)
        for pair_id, split, fingerprint in ReleaseItem.objects.filter(release=release).values_list(
            "pair_id", "split", "fingerprint"
        )
    }


def diff(old: Release, new: Release) -> ReleaseDiff:
    return diff_members(members(old), members(new))


def pair_summaries(pair_ids: list[int]) -> dict[int, dict]:
    """Enough to show a pair in a diff: book, figure label, modality, caption."""
    rows = Pair.objects.filter(pk__in=pair_ids).values(
        "id", "text", "modality", "status", "textbook__title", "panel__figure__label",
        "panel__letter",
    )  # fmt: skip
    return {r["id"]: r for r in rows}
