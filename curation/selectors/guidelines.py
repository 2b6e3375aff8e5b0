"""The guidelines as the panel and the editing page show them: stored text, else the default."""

from __future__ import annotations

from dataclasses import dataclass

from curation.guidelines import DEFAULTS, LABELS
from curation.models import Guideline


@dataclass(frozen=True)
class Entry:
    kind: str
    code: str
    label: str
    text: str
    version: int  # 0: never edited, the built-in default is shown
    updated_by: str
    updated_at: object


def guideline_sections() -> list[tuple[str, list[Entry]]]:
    """One section per kind, in the order the review form asks, one query for all rows."""
    stored = {(g.kind, g.code): g for g in Guideline.objects.select_related("updated_by")}
    sections = []
    for kind, kind_label in Guideline.Kind.choices:
        entries = []
        for code, text in DEFAULTS[kind].items():
            row = stored.get((kind, str(code)))
            entries.append(
                Entry(
                    kind=kind,
                    code=str(code),
                    label=str(LABELS[kind].get(code, code)),
                    text=row.text if row else text,
                    version=row.version if row else 0,
                    updated_by=row.updated_by.get_username() if row and row.updated_by else "",
                    updated_at=row.updated_at if row else None,
                )
            )
        sections.append((str(kind_label), entries))
    return sections
