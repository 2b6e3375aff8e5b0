"""A small reviewed world to cut releases from: books, figures, panels with real crops, pairs
in every status and VQA items accepted, edited (with the LLM draft kept) and rejected."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field

import pytest


def png(seed: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (24, 16), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@dataclass
class World:
    curator: object
    books: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    vqa: list = field(default_factory=list)

    def add_pair(self, book, label, *, status="accepted", modality="clinical", panels=1, seed=0):
        from curation.models import Figure, Page, Pair, Panel
        from curation.services.storage import store_bytes

        page, _ = Page.objects.get_or_create(
            textbook=book, number=len(self.pairs) + 1, defaults={"width": 600, "height": 800}
        )
        figure = Figure.objects.create(
            textbook=book, page=page, label=label, bbox=[0, 0, 1, 1],
            caption=f"Fig. {label} Plaque psoriasis (arrows).",
            image=store_bytes(png(seed + 1000), prefix="crops", ext="png"),
        )  # fmt: skip
        made = []
        for index in range(panels):
            panel = Panel.objects.create(
                figure=figure, index=index, letter="ab"[index] if panels > 1 else "",
                bbox=[0, 0, 1, 1], image=store_bytes(png(seed + index), prefix="crops", ext="png"),
            )  # fmt: skip
            pair = Pair.objects.create(
                panel=panel, textbook=book, status=status, modality=modality,
                text=f"({'ab'[index]}) Psoriasis on the elbow, {label}", diagnosis="psoriasis",
                age=40 + index, sex="female", proposed={"text": "machine caption"},
            )  # fmt: skip
            self.pairs.append(pair)
            made.append(pair)
        return made

    def add_vqa(self, pair, *, status="accepted", answer="Psoriasis", draft="Psoriasis"):
        from curation.models import VQAItem

        item = VQAItem.objects.create(
            pair=pair, question_type="diagnosis", question="What is the most likely diagnosis?",
            answer=answer, status=status, generator={"model": "test-llm"}, prompt_version="v1",
            draft={"question": "What is the most likely diagnosis?", "answer": draft},
        )  # fmt: skip
        self.vqa.append(item)
        return item


@pytest.fixture
def world(db, make_user):
    from curation.models import Textbook

    w = World(curator=make_user("cur", "curator"))
    modalities = ["clinical", "dermoscopic", "pathological"]
    seed = 0
    for b in range(3):
        book = Textbook.objects.create(
            title=f"Atlas {b}", sha256=f"{b}" * 64, file=f"books/{b}.pdf", size_bytes=1,
            page_count=100, status="done",
        )  # fmt: skip
        w.books.append(book)
        for f in range(6):
            seed += 10
            pairs = w.add_pair(
                book, f"{b}.{f}", modality=modalities[(b + f) % 3], panels=1 + f % 2, seed=seed
            )
            for pair in pairs:
                w.add_vqa(pair)
    # One of each interesting case on the first pair.
    first = w.pairs[0]
    w.add_vqa(first, status="edited", answer="Chronic plaque psoriasis", draft="Eczema")
    w.add_vqa(first, status="rejected", answer="Lichen planus", draft="Tinea")
    w.add_vqa(first, status="rejected", answer="Tinea", draft="Tinea")  # no better answer given
    w.add_vqa(first, status="drafted", answer="Unreviewed", draft="Unreviewed")
    # Pairs that must never ship.
    w.add_pair(w.books[0], "9.1", status="proposed", seed=900)
    w.add_pair(w.books[0], "9.2", status="rejected", seed=910)
    return w


@pytest.fixture
def cut(world):
    """Create a release through the service and build it inline; returns the fresh row."""
    from curation.models import Release
    from curation.services import releases as release_service

    def make(name="mmskin", version="1.0.0", **kwargs) -> Release:
        kwargs.setdefault("user", world.curator)
        release = release_service.create_release(name=name, version=version, **kwargs)
        release_service.run_build(release.pk, release.build_token)
        return Release.objects.get(pk=release.pk)

    return make


@pytest.fixture
def release_worker_factory(celery_worker_factory):
    """Real ``celery worker`` processes on the ``release`` queue, stopped at teardown."""
    return functools.partial(celery_worker_factory, "release")
