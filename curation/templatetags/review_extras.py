"""Template helpers for the review pages: people's names, times, word diffs.

Times render as ``<time datetime="ISO">`` with a readable UTC fallback; the static
``localtime.js`` rewrites them into the browser's time zone. Diffs come from
``curation.selectors.diffs`` as segments and are marked up here, every piece escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from curation.selectors.diffs import DELETE, INSERT, Segment, word_diff

register = template.Library()
MACHINE = "machine"


def display_name(user) -> str:
    """A person as colleagues know them: full name, else username; ``None`` is the machine."""
    if user is None or not getattr(user, "pk", None):
        return MACHINE
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


@register.filter
def person(user) -> str:
    return display_name(user)


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


@register.filter
def when(value) -> SafeString | str:
    """``<time>`` with the ISO instant for the script and "2026-12-02 17:31 UTC" for readers
    whose browser runs no script."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return format_html(
        '<time datetime="{}" class="localtime">{}</time>',
        moment.isoformat(timespec="seconds"),
        moment.strftime("%Y-%m-%d %H:%M UTC"),
    )


_TAGS = {INSERT: "ins", DELETE: "del"}


@register.filter
def marked(segments) -> SafeString:
    """Diff segments as text with ``<del>``/``<ins>`` around what changed."""

    def parts(segment: Segment):
        tag = _TAGS.get(segment.op)
        if tag is None:
            return format_html("{}", segment.text)
        return format_html("<{}>{}</{}>", tag, segment.text, tag)

    return format_html_join("", "{}", ((parts(s),) for s in segments or ()))


@register.filter
def worddiff(old, new) -> SafeString:
    """``{{ old|worddiff:new }}``: the two values word by word, marked up."""
    return marked(word_diff(old, new))
