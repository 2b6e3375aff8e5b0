"""Template tags for near-duplicate pictures: one line includes each partial in a page.

{% load duplicates %}{% pair_duplicates pair %}   (the review page)
{% load duplicates %}{% duplicate_clusters %}     (the dashboard)
"""

from __future__ import annotations

from django import template

from curation.selectors import duplicates as select

register = template.Library()


@register.inclusion_tag("review/_duplicates.html", takes_context=True)
def pair_duplicates(context, pair) -> dict:
    """Where else this pair's picture appears, with "same picture" / "different" buttons."""
    return {
        "pair": pair,
        "duplicates": select.also_appears(pair),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("review/_clusters.html")
def duplicate_clusters() -> dict:
    return {"clusters": select.cluster_counts()}
