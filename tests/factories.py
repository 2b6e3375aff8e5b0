"""Rows for tests that need reviewed content without running extraction."""

from __future__ import annotations

import itertools

from curation.models import Figure, Page, Pair, Panel, Textbook
from curation.services.audit import record_event

_seq = itertools.count(1)


def make_book(title: str = "Atlas", pages: int = 10) -> Textbook:
    n = next(_seq)
    book = Textbook.objects.create(
        title=title, sha256=f"{n:064x}", file=f"books/{n}.pdf", size_bytes=1, page_count=pages,
        status=Textbook.Status.DONE,
    )  # fmt: skip
    for number in range(1, pages + 1):
        Page.objects.create(textbook=book, number=number, width=595, height=842)
    return book


def make_pairs(book: Textbook, count: int, *, modality: str = "clinical", caption: str = ""):
    pairs = []
    for i in range(count):
        page = book.pages.get(number=i % book.page_count + 1)
        label = f"{page.number}.{next(_seq)}"
        text = caption or f"Fig. {label} Plaque psoriasis in a 40-year-old man."
        figure = Figure.objects.create(
            textbook=book, page=page, label=label, bbox=[50, 60, 300, 400], caption=text,
            image="crops/fig.png", modality=modality,
        )  # fmt: skip
        panel = Panel.objects.create(
            figure=figure, index=0, bbox=[50, 60, 300, 400], image="crops/panel.png"
        )
        proposal = {
            "text": text, "modality": modality, "modality_confidence": 0.8,
            "diagnosis": "psoriasis", "age": 40, "sex": "male", "flags": [],
        }  # fmt: skip
        pair = Pair.objects.create(
            panel=panel, textbook=book, text=text, modality=modality, diagnosis="psoriasis",
            age=40, sex="male", proposed=proposal,
        )  # fmt: skip
        record_event(None, pair, "pair.proposed", after=proposal)
        pairs.append(pair)
    return pairs
