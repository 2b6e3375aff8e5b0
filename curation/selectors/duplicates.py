"""Reads for near-duplicate crops: where else a pair's picture appears, and cluster counts."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, Subquery

from curation.models import CropImage, DuplicateVerdict, Pair


def also_appears(pair: Pair, limit: int = 20) -> list[dict]:
    """Other pairs showing this pair's picture: the same file, or one near-duplicate cluster.

    Each row: pair id, book title, page, figure label, whether byte-identical, and the latest
    verdict an expert gave on the two crops ("" when none). Three queries at most, whatever
    the number of rows, two when no other file is involved (the review page's query budget).
    """
    image = pair.panel.image
    own_cluster = CropImage.objects.filter(image=image).exclude(cluster="").values("cluster")[:1]
    # The cluster's files as a list first: "image = x OR image IN (subquery)" keeps Postgres
    # from using the index on the crop path (a scan of every pair: 44 ms at 11,000 pairs).
    images = {image, *CropImage.objects.filter(cluster=Subquery(own_cluster)).values_list(
        "image", flat=True
    )}  # fmt: skip
    rows = list(
        Pair.objects.filter(panel__image__in=images)
        .exclude(pk=pair.pk)
        .order_by("textbook__title", "panel__figure__page__number", "id")
        .values(
            "id", "textbook__title", "textbook__edition", "panel__figure__page__number",
            "panel__figure__label", "panel__letter", "panel__image",
        )[:limit]
    )  # fmt: skip
    if not rows:
        return []
    others = {r["panel__image"] for r in rows} - {image}
    latest: dict[tuple[str, str], str] = {}
    for a, b, verdict in (
        ()
        if not others
        else (
            DuplicateVerdict.objects.filter(
                Q(image_a=image, image_b__in=others) | Q(image_b=image, image_a__in=others)
            )
            .order_by("created_at", "id")
            .values_list("image_a", "image_b", "verdict")
        )
    ):
        latest[(a, b)] = verdict
    return [
        {
            "pair_id": r["id"],
            "book": r["textbook__title"],
            "edition": r["textbook__edition"],
            "page": r["panel__figure__page__number"],
            "figure": r["panel__figure__label"] + (r["panel__letter"] or ""),
            "identical": r["panel__image"] == image,
            "verdict": latest.get(tuple(sorted((image, r["panel__image"]))), ""),
        }
        for r in rows
    ]


def cluster_counts() -> dict:
    """Dashboard figures: near-duplicate clusters, the crops in them, and reused files."""
    clusters = CropImage.objects.exclude(cluster="").aggregate(
        clusters=Count("cluster", distinct=True), crops=Count("id")
    )
    reused = (
        Pair.objects.order_by()
        .values("panel__image")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    return {
        "clusters": clusters["clusters"],
        "clustered_crops": clusters["crops"],
        "identical_files": reused,
        "described": CropImage.objects.count(),
        "verdicts": DuplicateVerdict.objects.count(),
        "different": DuplicateVerdict.objects.filter(
            verdict=DuplicateVerdict.Verdict.DIFFERENT
        ).count(),
    }


def pair_clusters(pairs) -> dict[int, str]:
    """pair id -> cluster key ("" when alone) for a queryset of pairs (the release's)."""
    cluster = CropImage.objects.filter(image=OuterRef("panel__image")).values("cluster")[:1]
    rows = pairs.annotate(dup_cluster=Subquery(cluster)).values_list("id", "dup_cluster")
    return {pk: c or "" for pk, c in rows.filter(~Q(dup_cluster="") & Q(dup_cluster__isnull=False))}
