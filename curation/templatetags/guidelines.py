"""``{% guidelines_panel %}``: the definitions beside every review form, one query."""

from __future__ import annotations

from django import template

from curation.selectors.guidelines import guideline_sections

register = template.Library()


@register.inclusion_tag("review/_guidelines_panel.html", takes_context=True)
def guidelines_panel(context) -> dict:
    request = context.get("request")
    roles = context.get("user_roles") or ()
    return {
        "sections": guideline_sections(),
        "can_edit": "curator" in roles or "admin" in roles,
        "request": request,
    }
