"""A small real PDF behind a factory book, so crops can be re-rendered from it."""

from __future__ import annotations

import io

import pymupdf
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from curation.models import Figure, Pair, Panel
from curation.services import dispatch
from curation.services.audit import record_event
from tests.dispatching import record_sends
from tests.factories import make_book

FIGURE_BOX = [50.0, 60.0, 300.0, 400.0]
LEFT = [50.0, 60.0, 170.0, 400.0]
RIGHT = [180.0, 60.0, 300.0, 400.0]


def pdf_bytes() -> bytes:
    """One A4 page with a red and a blue 'photograph' side by side, and a caption."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.draw_rect(pymupdf.Rect(*LEFT), color=None, fill=(0.8, 0.1, 0.1))
    page.draw_rect(pymupdf.Rect(*RIGHT), color=None, fill=(0.1, 0.2, 0.8))
    page.insert_text((50, 420), "Fig. 1.1 (a) Plaque. (b) Scale.", fontsize=10)
    data = doc.tobytes()
    doc.close()
    return data


def png(color=(200, 120, 110), size=(60, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def make_figure(book, *, boxes, letters=None, subcaptions=None, caption="Fig. 1.1 Psoriasis."):
    """A figure on page 1 with one panel (and proposed pair) per box."""
    page = book.pages.get(number=1)
    for name, color in (("crops/fig.png", (10, 10, 10)), ("crops/panel.png", (200, 120, 110))):
        if not default_storage.exists(name):
            default_storage.save(name, ContentFile(png(color)))
    figure = Figure.objects.create(
        textbook=book, page=page, label=f"1.{Figure.objects.count() + 1}", bbox=list(FIGURE_BOX),
        caption=caption, image="crops/fig.png", modality="clinical",
    )  # fmt: skip
    pairs = []
    for i, box in enumerate(boxes):
        letter = (letters or [""] * len(boxes))[i]
        sub = (subcaptions or [""] * len(boxes))[i]
        panel = Panel.objects.create(
            figure=figure, index=i, letter=letter, bbox=list(box), subcaption=sub,
            image="crops/panel.png",
        )  # fmt: skip
        text = sub if len(boxes) > 1 and sub else caption
        proposal = {
            "text": text, "modality": "clinical", "modality_confidence": 0.7,
            "diagnosis": "psoriasis", "age": 40, "sex": "male", "flags": [],
        }  # fmt: skip
        pair = Pair.objects.create(
            panel=panel, textbook=book, text=text, modality="clinical", diagnosis="psoriasis",
            age=40, sex="male", proposed=proposal,
        )  # fmt: skip
        record_event(None, pair, "pair.proposed", after=proposal)
        pairs.append(pair)
    return figure, pairs


def make_previewed_book(pages: int = 1):
    """A factory book backed by the small PDF, with page previews rendered from it (UI tests)."""
    from curation.extract.pagerender import render_pages
    from curation.models import Page
    from curation.services.storage import store_bytes

    book = make_book(pages=pages)
    default_storage.save(book.file, ContentFile(pdf_bytes()))
    previews = render_pages(default_storage.path(book.file), 1, pages, dpi=72)
    for number, preview in previews.items():
        Page.objects.filter(textbook=book, number=number).update(
            image=store_bytes(preview, prefix="pages", ext="jpg")
        )
    return book


@pytest.fixture
def book(db):
    book = make_book(pages=2)
    default_storage.save(book.file, ContentFile(pdf_bytes()))
    return book


@pytest.fixture
def expert(make_user):
    return make_user("ann", "expert")


@pytest.fixture
def curator(make_user):
    return make_user("cat", "curator")


@pytest.fixture
def queued_nothing(monkeypatch):
    """Services queue no task: the test calls the task itself."""
    record_sends(monkeypatch, dispatch.RENDER_CROPS)
