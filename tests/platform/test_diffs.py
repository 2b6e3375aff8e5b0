"""Word-level diffs for the conflict pages and the history (pure functions)."""

from itertools import pairwise

from curation.selectors.diffs import (
    DELETE,
    EQUAL,
    INSERT,
    Segment,
    as_text,
    changed,
    field_changes,
    word_diff,
)


def _old(segments):
    return "".join(s.text for s in segments if s.op != INSERT)


def _new(segments):
    return "".join(s.text for s in segments if s.op != DELETE)


def test_one_changed_word_is_the_only_change():
    diff = word_diff("Red scaly plaque on the elbow.", "Red scaly patch on the elbow.")
    assert diff == [
        Segment(EQUAL, "Red scaly "),
        Segment(DELETE, "plaque"),
        Segment(INSERT, "patch"),
        Segment(EQUAL, " on the elbow."),
    ]


def test_adjacent_changed_words_read_as_one_phrase():
    diff = word_diff("a red plaque here", "a blue patch here")
    assert diff == [
        Segment(EQUAL, "a "),
        Segment(DELETE, "red plaque"),
        Segment(INSERT, "blue patch"),
        Segment(EQUAL, " here"),
    ]


def test_insertions_and_deletions_alone():
    assert word_diff("psoriasis", "guttate psoriasis") == [
        Segment(INSERT, "guttate "),
        Segment(EQUAL, "psoriasis"),
    ]
    assert word_diff("an old red plaque", "an plaque") == [
        Segment(EQUAL, "an "),
        Segment(DELETE, "old red "),
        Segment(EQUAL, "plaque"),
    ]


def test_both_sides_are_rebuilt_exactly():
    old = "Fig. 3.2  Erythema   migrans\non the thigh of a 40-year-old man"
    new = "Fig. 3.2 Erythema chronicum migrans\non the left thigh of a man"
    diff = word_diff(old, new)
    assert _old(diff) == old and _new(diff) == new
    assert all(a.op != b.op for a, b in pairwise(diff))  # no split runs


def test_equal_values_have_no_change_and_empty_reads_as_a_dash():
    assert word_diff("same text", "same text") == [Segment(EQUAL, "same text")]
    assert word_diff(None, "") == [Segment(EQUAL, "—")]
    assert not changed(None, "") and not changed([], None) and changed(None, "male")
    assert as_text(["face", "marks"]) == "face, marks" and as_text(40) == "40"


def test_non_text_values_diff_as_their_text():
    assert word_diff(40, 41) == [Segment(DELETE, "40"), Segment(INSERT, "41")]
    assert word_diff(["face"], ["face", "marks"]) == [
        Segment(EQUAL, "face"),
        Segment(INSERT, ", marks"),
    ]


def test_field_changes_lists_only_changed_fields_in_order():
    before = {"diagnosis": "psoriasis", "age": None, "sex": "male"}
    after = {"diagnosis": "guttate psoriasis", "age": "", "sex": "female", "text": "x"}
    changes = field_changes(before, after)
    assert [c.field for c in changes] == ["diagnosis", "sex"]
    assert (changes[1].old, changes[1].new) == ("male", "female")
    ordered = field_changes(before, after, fields=["sex", "text", "diagnosis"])
    assert [c.field for c in ordered] == ["sex", "text", "diagnosis"]
    assert ordered[1].old == "—" and ordered[1].segments == (
        Segment(DELETE, "—"),
        Segment(INSERT, "x"),
    )
