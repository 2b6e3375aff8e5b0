"""Near-duplicate crops: describe them at ingest, keep clusters, record expert verdicts.

The hashing and clustering are plain functions in ``curation.dedupe``; this module reads the
crops from storage, stores descriptors in ``CropImage`` rows and writes the clusters back.
Clustering runs over every crop of every book (see bench_dedupe.py for its time at 11,000
crops), outside any lock; the write re-checks that nothing changed meanwhile (``recluster``).
Verdicts are constraints of that clustering: "different" splits the two crops apart for good,
"same" joins them whatever their distance.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Max, Q

from curation import dedupe
from curation.events import EventAction
from curation.models import CropImage, DuplicateVerdict, Pair, Panel, ProjectSettings
from curation.services.audit import record_event
from curation.services.errors import ServiceError

log = logging.getLogger(__name__)


def sha_of(image: str) -> str:
    """The sha256 a content-addressed storage path is named by (crops/ab/<sha>.png)."""
    return posixpath.splitext(posixpath.basename(image))[0]


def index_images(paths: Iterable[str]) -> int:
    """Describe the crops that have no ``CropImage`` row yet; returns how many were added.

    A crop missing from storage or that cannot be decoded is logged and left out: it can
    still only join others by exact sha256.
    """
    wanted = sorted(set(paths))
    known = set(CropImage.objects.filter(image__in=wanted).values_list("image", flat=True))
    rows = []
    for path in wanted:
        if path in known:
            continue
        try:
            with default_storage.open(path, "rb") as fh:
                desc = dedupe.describe(fh.read())
        except (OSError, ValueError) as exc:
            log.warning("crop %s cannot be described: %s", path, exc)
            continue
        rows.append(
            CropImage(
                image=path,
                sha256=sha_of(path),
                phash=f"{desc.phash[0]:016x}",
                descriptor=desc.to_bytes(),
                informative=desc.informative,
            )
        )
    CropImage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def _verdict_links(index: dict[str, int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The latest verdict per pair of crops, as must-link / cannot-link index pairs."""
    latest: dict[tuple[str, str], str] = {}
    for a, b, verdict in DuplicateVerdict.objects.order_by("created_at", "id").values_list(
        "image_a", "image_b", "verdict"
    ):
        latest[(a, b)] = verdict
    must, cannot = [], []
    for (a, b), verdict in latest.items():
        if a in index and b in index:
            pair = (index[a], index[b])
            (must if verdict == DuplicateVerdict.Verdict.SAME else cannot).append(pair)
    return must, cannot


def _state() -> tuple:
    """What a clustering was computed from: the crops described and the verdicts given."""
    crops = CropImage.objects.aggregate(n=Count("id"), top=Max("id"))
    return crops["n"], crops["top"], DuplicateVerdict.objects.aggregate(top=Max("id"))["top"]


def recluster(user=None, *, reason: str = "", around: Iterable[str] = ()) -> dict:
    """Cluster the described crops again and store the changes; returns counts.

    ``around``: only the clusters of these crops (and the crops themselves) are redone, which
    is all an expert verdict on two crops can change; by default every crop is.
    The clustering (seconds at 11,000 crops) runs outside any transaction, so it never holds
    a lock that reviews or drafting wait on. The write then locks the rows, and when a crop,
    a verdict or another recluster's write arrived meanwhile, it clusters again (up to three
    times; a later recluster catches up with anything still newer).
    """
    around = list(around)
    for attempt in range(3):
        state = _state()
        scope = CropImage.objects.order_by("id")
        if around:
            clusters = set(
                CropImage.objects.filter(image__in=around)
                .exclude(cluster="")
                .values_list("cluster", flat=True)
            )
            scope = scope.filter(Q(image__in=around) | Q(cluster__in=clusters))
        rows = list(scope.values_list("id", "image", "descriptor", "cluster"))
        descs = [dedupe.Descriptor.from_bytes(bytes(r[2])) for r in rows]
        must, cannot = _verdict_links({r[1]: k for k, r in enumerate(rows)})
        labels = dedupe.cluster(descs, must_link=must, cannot_link=cannot)
        sizes: dict[int, int] = {}
        for label in labels:
            sizes[label] = sizes.get(label, 0) + 1
        wanted = {
            pk: sha_of(rows[labels[k]][1]) if sizes[labels[k]] > 1 else ""
            for k, (pk, _image, _d, _old) in enumerate(rows)
        }
        read = {pk: old for pk, _image, _d, old in rows}
        with transaction.atomic():
            current = dict(
                CropImage.objects.select_for_update()
                .filter(pk__in=read)
                .values_list("pk", "cluster")
            )
            if attempt < 2 and (current != read or _state() != state):
                continue
            changed = [
                CropImage(pk=pk, cluster=new)
                for pk, new in wanted.items()
                if current.get(pk) != new
            ]
            CropImage.objects.bulk_update(changed, ["cluster"], batch_size=500)
            counts = {
                "crops": len(rows),
                "clusters": sum(1 for n in sizes.values() if n > 1),
                "clustered_crops": sum(n for n in sizes.values() if n > 1),
                "changed": len(changed),
            }
            if changed:
                anchor = ProjectSettings.current()
                record_event(
                    user, anchor, EventAction.DUPLICATES_RECLUSTERED, after=counts, note=reason
                )
            return counts
    raise AssertionError("unreachable: the third attempt always writes")


def index_textbook(book_id: int) -> dict:
    """Describe a book's crops and recluster: called when its ingest finishes."""
    paths = Panel.objects.filter(figure__textbook_id=book_id).values_list("image", flat=True)
    added = index_images(paths)
    counts = recluster(reason=f"textbook {book_id} ingested")
    return {"added": added, **counts}


def safe_index_textbook(book_id: int) -> None:
    """``index_textbook`` that never fails an ingest: a failure is logged, and the ``dedupe``
    management command catches up later."""
    try:
        index_textbook(book_id)
    except Exception:  # duplicates are advisory until a release is cut
        log.exception("near-duplicate indexing of textbook %s failed", book_id)


def record_verdict(pair: Pair, other: Pair, verdict: str, user) -> DuplicateVerdict:
    """An expert says whether two pairs show the same picture; "different" splits them."""
    if verdict not in DuplicateVerdict.Verdict.values:
        raise ServiceError("bad_verdict", "A verdict is 'same' or 'different'.")
    if pair.pk == other.pk:
        raise ServiceError("same_pair", "A pair is always the same picture as itself.")
    a, b = sorted((pair.panel.image, other.panel.image))
    if a == b and verdict == DuplicateVerdict.Verdict.DIFFERENT:
        raise ServiceError(
            "identical", "These two crops are byte-identical: they are the same picture."
        )
    index_images([a, b])
    with transaction.atomic():
        before = dict(CropImage.objects.filter(image__in=[a, b]).values_list("image", "cluster"))
        row = DuplicateVerdict.objects.create(image_a=a, image_b=b, verdict=verdict, expert=user)
    recluster(user, reason=f"verdict {row.pk}", around=[a, b])
    after = dict(CropImage.objects.filter(image__in=[a, b]).values_list("image", "cluster"))
    record_event(
        user,
        pair,
        EventAction.DUPLICATE_VERDICT,
        before={"clusters": before},
        after={"verdict": verdict, "other_pair": other.pk, "clusters": after},
    )
    return row
