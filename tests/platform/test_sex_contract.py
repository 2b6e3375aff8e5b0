"""Sex is "female" | "male" | null from the extractor to the release, and what was stored
before in the extractor's "F"/"M" is respelt by migration 0013."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from curation.extract.annotate import age_sex
from curation.models import Sex

BEFORE = [("curation", "0012_ingest_heartbeat")]
AFTER = [("curation", "0013_sex_contract")]


def test_the_extractor_writes_the_platforms_values():
    assert set(Sex.values) == {"female", "male"}
    for caption in ("Eczema in an elderly woman", "Psoriasis (F, 62).", "in a 7-year-old girl"):
        assert age_sex(caption)[1] == Sex.FEMALE
    for caption in ("Naevus (34, M)", "Acne in a 15-year-old boy"):
        assert age_sex(caption)[1] == Sex.MALE
    assert age_sex("Histopathology (H&E, x200)")[1] is None


def test_ingest_proposes_the_contracts_values(db):
    from curation.extract import FigureInfo, PanelInfo
    from curation.services.ingest import _pair_values

    def figure(sex):
        panel = PanelInfo(index=0, letter="", bbox=(0, 0, 1, 1), subcaption="", image_png=b"",
                          modality="clinical", modality_confidence=0.5)  # fmt: skip
        return FigureInfo(label="1.1", page=1, bbox=(0, 0, 1, 1), caption="Fig. 1.1 x",
                          caption_bbox=None, image_png=b"", panels=[panel], modality="clinical",
                          modality_confidence=0.5, section=[], diagnosis="", age=None,
                          sex=sex)  # fmt: skip

    assert _pair_values(figure("female"), 0)["sex"] == "female"
    assert _pair_values(figure(None), 0)["sex"] is None


@pytest.mark.django_db(transaction=True)
def test_migration_respells_every_stored_copy():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Textbook, Page, Figure = (old.get_model("curation", m) for m in ("Textbook", "Page", "Figure"))
    Panel, Pair, Review = (old.get_model("curation", m) for m in ("Panel", "Pair", "Review"))
    ReviewEvent = old.get_model("curation", "ReviewEvent")
    user = User.objects.create(username="ann")
    book = Textbook.objects.create(title="A", sha256="a" * 64, file="x", size_bytes=1,
                                   page_count=1)  # fmt: skip
    page = Page.objects.create(textbook=book, number=1, width=1, height=1)
    ids = {}
    for label, sex, proposed in (("1", "F", "F"), ("2", "male", "M"), ("3", "", "")):
        figure = Figure.objects.create(textbook=book, page=page, label=label, bbox=[0, 0, 1, 1],
                                       image="x")  # fmt: skip
        panel = Panel.objects.create(figure=figure, index=0, bbox=[0, 0, 1, 1], image="x")
        pair = Pair.objects.create(panel=panel, textbook=book, text="t", sex=sex,
                                   proposed={"text": "t", "sex": proposed, "age": 3})  # fmt: skip
        ids[label] = pair.pk
        ReviewEvent.objects.create(target_type="pair", target_id=pair.pk, action="pair.proposed",
                                   after={"text": "t", "sex": proposed})  # fmt: skip
        ReviewEvent.objects.create(target_type="pair", target_id=pair.pk, action="pair.edited",
                                   actor=user, before={"sex": proposed},
                                   after={"status": "edited", "sex": sex,
                                          "proposed": {"sex": proposed}})  # fmt: skip
    Review.objects.create(item_id=ids["1"], textbook=book, expert=user, decision="accepted",
                          values={"sex": "F", "text": "t"})  # fmt: skip
    Review.objects.create(item_id=ids["1"], textbook=book, expert=user, decision="accepted",
                          adjudication=True, values={"sex": ""})  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Pair, Review = new.get_model("curation", "Pair"), new.get_model("curation", "Review")
    ReviewEvent = new.get_model("curation", "ReviewEvent")
    expect = {"1": ("female", "female"), "2": ("male", "male"), "3": (None, None)}
    for label, (sex, proposed) in expect.items():
        pair = Pair.objects.get(pk=ids[label])
        assert (pair.sex, pair.proposed["sex"], pair.proposed["age"]) == (sex, proposed, 3)
        events = ReviewEvent.objects.filter(target_id=ids[label]).order_by("id")
        first, edit = events
        assert first.after == {"text": "t", "sex": proposed}
        assert edit.before == {"sex": proposed}
        assert edit.after == {"status": "edited", "sex": sex, "proposed": {"sex": proposed}}
    reviews = Review.objects.order_by("id")
    assert [(r.values["sex"], r.independent) for r in reviews] == [("female", True), (None, False)]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # leave the database as it was
