"""Near-duplicate crops: describe them at ingest, keep clusters, record expert verdicts.

The hashing and clustering are plain functions in ``curation.dedupe``; this module reads the
crops from storage, stores descriptors in ``CropImage`` rows and writes the clusters back.
A finished book's new crops are clustered incrementally against the index (see bench_dedupe.py
for both timings at 11,000 crops), outside any lock; the write re-checks that nothing changed
meanwhile (``recluster``).
Verdicts are constraints of that clustering: "different" splits the two crops apart for good,
"same" joins them whatever their distance.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Max

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


def recluster(
    user=None, *, reason: str = "", around: Iterable[str] = (), everything: bool = False
) -> dict:
    """Bring the clusters up to date with the described crops and the verdicts; returns counts.

    By default incremental (``dedupe.update``): crops not clustered yet (``component`` null)
    are compared with every crop, and only they and the components they reach are clustered
    again, which equals clustering everything. ``around``: crops an expert verdict was just
    given on; their components are redone too. ``everything``: cluster every crop from
    scratch (the ``dedupe --all`` command, after the thresholds change).
    The clustering runs outside any transaction, so it never holds a lock that reviews or
    drafting wait on. The write then locks the rows it changes, and when a crop, a verdict
    or another recluster's write arrived meanwhile, it clusters again (up to three times; a
    later recluster catches up with anything still newer).
    """
    around = set(around)
    for attempt in range(3):
        state = _state()
        rows = list(
            CropImage.objects.order_by("id").values_list(
                "id", "image", "descriptor", "cluster", "component"
            )
        )
        index = {sha_of(r[1]): k for k, r in enumerate(rows)}
        previous = [None if everything else _previous(k, r, index) for k, r in enumerate(rows)]
        descs = [dedupe.Descriptor.from_bytes(bytes(r[2])) for r in rows]
        must, cannot = _verdict_links({r[1]: k for k, r in enumerate(rows)})
        # Every verdict's crops are redone, not only ``around``'s: a verdict given while
        # another recluster computed is then applied by whichever writes last (verdicts are
        # few, and their components small).
        judged = {k for link in must + cannot for k in link}
        result, redo = dedupe.update(
            descs, previous, must_link=must, cannot_link=cannot,
            around=sorted(judged | {k for k, r in enumerate(rows) if r[1] in around}),
        )  # fmt: skip
        clusters, components = _names(result.labels, rows), _names(result.components, rows)
        wanted = {rows[k][0]: (clusters[k], components[k]) for k in redo}
        read = {rows[k][0]: (rows[k][3], rows[k][4]) for k in redo}
        with transaction.atomic():
            current = {
                pk: (cluster, component)
                for pk, cluster, component in CropImage.objects.select_for_update()
                .filter(pk__in=read)
                .values_list("pk", "cluster", "component")
            }
            if attempt < 2 and (current != read or _state() != state):
                continue
            changed = [
                CropImage(pk=pk, cluster=cluster, component=component)
                for pk, (cluster, component) in wanted.items()
                if current.get(pk) != (cluster, component)
            ]
            CropImage.objects.bulk_update(changed, ["cluster", "component"], batch_size=500)
            sizes = Counter(result.labels)
            counts = {
                "crops": len(rows),
                "reclustered": len(redo),
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


def _names(labels: list[int], rows: list[tuple]) -> list[str]:
    """Each crop's cluster (or component) as stored: its first crop's sha256, blank alone."""
    sizes = Counter(labels)
    return [sha_of(rows[label][1]) if sizes[label] > 1 else "" for label in labels]


def _previous(k: int, row: tuple, index: dict[str, int]) -> tuple[int, int] | None:
    """A stored crop's (cluster, component) as indices, or None when it is to be clustered:
    never clustered yet, or naming a crop no longer there."""
    _pk, _image, _desc, cluster, component = row
    if component is None:
        return None
    label = index.get(cluster) if cluster else k
    comp = index.get(component) if component else k
    if label is None or comp is None:
        return None
    return label, comp


def index_textbook(book_id: int) -> dict:
    """Describe a book's crops and recluster: called when its ingest finishes."""
    paths = Panel.objects.filter(figure__textbook_id=book_id).values_list("image", flat=True)
    added = index_images(paths)
    counts = recluster(reason=f"textbook {book_id} ingested")  # its new crops, incrementally
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
