"""One vocabulary for audit events: ``EventAction`` declares every kind, ``record_event``
refuses any other, and no module spells a kind out as a string of its own."""

import re
from pathlib import Path

import pytest

from curation.events import EventAction
from curation.models import ReviewEvent
from curation.services.audit import record_event
from tests.factories import make_book

ROOT = Path(__file__).resolve().parents[2]


def test_an_undeclared_action_is_refused_and_nothing_is_written(db):
    book = make_book()
    with pytest.raises(ValueError, match="not an EventAction"):
        record_event(None, book, "textbook.imprted")
    assert not ReviewEvent.objects.filter(target_type="textbook").exists()


def test_a_declared_action_is_stored_as_its_value(db):
    book = make_book()
    event = record_event(None, book, EventAction.TEXTBOOK_IMPORTED)
    assert ReviewEvent.objects.get(pk=event.pk).action == "textbook.imported"


def test_no_module_spells_an_event_kind_out_itself():
    values = set(EventAction.values)
    spelled = []
    for path in [*(ROOT / "curation").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]:
        if "migrations" in path.parts or path.name == "events.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for literal in re.findall(r"[\"']([a-z]+\.[a-z_]+)[\"']", line):
                if literal in values:
                    spelled.append(f"{path.relative_to(ROOT)}:{number}: {literal}")
    assert not spelled, "use EventAction instead:\n" + "\n".join(spelled)
