"""Line-end hyphens: discretionary ones are joined away, hyphens of compounds are kept.

Chromium's PDFs showed both: soft hyphens (U+00AD, drawn as U+2010 at a break) left in the
text layer, and lines broken after the hard hyphen of "sun-damaged" or "45-year-old".
"""

from __future__ import annotations

from curation.extract.reader import Block, Hyphenation, PageData, apply_hyphenation, join_lines


def test_soft_hyphens_are_removed():
    assert join_lines(["Histo\u00adlogical exami\u00adnation"]) == "Histological examination"
    assert (
        join_lines(["extensive invol\u00ad\u2010", "vement here"]) == "extensive involvement here"
    )
    assert join_lines(["extensive invol\u00ad", "vement"]) == "extensive involvement"


def test_hyphen_after_a_digit_or_before_a_capital_stays_without_a_space():
    assert join_lines(["in a 45-", "year-old woman"]) == "in a 45-year-old woman"
    assert join_lines(["Figure 7-", "26"]) == "Figure 7-26"


def test_line_end_hyphen_without_evidence_is_discretionary():
    assert join_lines(["erythe-", "matous plaques"]) == "erythematous plaques"


def test_document_vocabulary_decides():
    hy = Hyphenation()
    hy.learn([_block(["plaques on sun-damaged skin", "erythematous papules"])])
    assert join_lines(["a papule on sun-", "damaged skin"], hy) == "a papule on sun-damaged skin"
    assert join_lines(["erythe-", "matous"], hy) == "erythematous"


def test_soft_hyphens_elsewhere_mean_plain_ones_are_hard():
    hy = Hyphenation()
    hy.learn([_block(["the diffe\u00ad\u2010", "rential diagnosis"])])
    assert join_lines(["a band-", "like infiltrate"], hy) == "a band-like infiltrate"


def test_apply_hyphenation_rejoins_blocks_with_chunk_evidence():
    first = _block(["Well-demarcated plaques with non-caseating granulomas."])
    second = _block(["Plaques are well-", "demarcated; granulomas are non-", "caseating."])
    pages = [PageData(1, 500, 700, [first], [], "x"), PageData(2, 500, 700, [second], [], "x")]
    apply_hyphenation(pages)
    assert second.text == "Plaques are well-demarcated; granulomas are non-caseating."
    assert pages[1].text == second.text


def _block(lines: list[str]) -> Block:
    return Block((0, 0, 100, 10 * len(lines)), join_lines(lines), lines, [])
