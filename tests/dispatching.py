"""Tests see what the services send by replacing the one function that sends tasks by name."""

from __future__ import annotations

from curation.services import dispatch


def record_sends(monkeypatch, name: str) -> list[tuple]:
    """The argument tuples of every ``name`` task sent from now on; other tasks are dropped."""
    sent: list[tuple] = []

    def send(task: str, *args) -> None:
        if task == name:
            sent.append(args)

    monkeypatch.setattr(dispatch, "send", send)
    return sent
