"""Layout cases first met in the Chromium-printed books, in isolation."""

from __future__ import annotations

import pymupdf

from curation.extract.layout import group_images
from curation.extract.reader import Block, PageData, Placement, Span, _paragraphs


def _line(x0: float, y0: float, text: str, size: float = 9.5) -> tuple[dict, pymupdf.Rect]:
    box = pymupdf.Rect(x0, y0, 480, y0 + size * 1.2)
    span = {"text": text, "size": size, "bbox": tuple(box)}
    return {"spans": [span], "bbox": tuple(box)}, box


def _split(rows: list[tuple[float, str]]) -> list[list[str]]:
    lines = [_line(x, 100 + 12 * i, t) for i, (x, t) in enumerate(rows)]
    parts = _paragraphs([ln for ln, _ in lines], [b for _, b in lines])
    return [[ln["spans"][0]["text"] for ln in part] for part in parts]


def test_paragraphs_set_without_spacing_are_split_at_their_indent():
    rows = [
        (54, "Histological examination confirms the diagnosis when the clinical"),
        (42, "picture is uncertain. The typical appearance is shown in Fig. 4.4a,"),
        (42, "b."),
        (54, "Treatment is chosen according to the extent of disease and the"),
        (42, "patient's preferences."),
    ]
    assert [len(p) for p in _split(rows)] == [3, 2]


def test_hanging_indent_caption_is_not_split():
    rows = [
        (42, "Fig. 2.1 Psoriasis vulgaris."),
        (54, "Clinical photograph of plaques on the elbow with silvery"),
        (54, "scale."),
    ]
    assert [len(p) for p in _split(rows)] == [3]


def test_pictures_in_two_columns_are_not_one_figure():
    """Equal, aligned pictures across a narrow column gutter (16 pt, within the loose gutter
    allowed for regular grids) are two figures when a caption lies inside their union."""
    a = Placement((50, 60, 170, 150), 1, 300, 225)
    b = Placement((186, 60, 306, 150), 2, 300, 225)
    c = Placement((186, 156, 306, 246), 3, 300, 225)
    cap_box = (50, 158, 170, 170)
    caption = Block(
        cap_box,
        "Fig. 1.1 Psoriasis.",
        ["Fig. 1.1 Psoriasis."],
        [Span("Fig. 1.1 Psoriasis.", "Helvetica", 8, False, cap_box)],
    )
    page = PageData(1, 356, 400, [caption], [a, b, c], "")
    groups = group_images(page)
    assert sorted(len(g.panels) for g in groups) == [1, 2]
    # Without text in between, the same geometry is one regular grid.
    page = PageData(1, 356, 400, [], [a, b, c], "")
    assert [len(g.panels) for g in group_images(page)] == [3]


def test_two_column_figures_split_by_the_nearest_captions():
    """Two equal pictures side by side across the column gutter, each captioned below, with the
    next figure's caption further down one column: the row is split by the nearest captions."""
    from curation.extract.layout import Caption, Group, split_by_captions

    left = Placement((54, 64, 301.5, 250), 1, 600, 450)
    right = Placement((316.5, 64, 564, 250), 2, 600, 450)
    group = Group([left, right], (54, 64, 564, 250))

    def cap(label, box):
        block = Block(box, f"FIG. {label} Text.", [f"FIG. {label} Text."], [])
        return Caption(label, block.text, box, [block], 2.5, ("helv", 8.0, True))

    caps = [
        cap("4.7", (54, 255, 297, 272)),
        cap("4.8", (316.5, 255, 540, 272)),
        cap("4.9", (316.5, 291, 557, 328)),  # the caption above the next figure
    ]
    parts = split_by_captions(group, caps)
    assert [p.bbox for p in parts] == [left.bbox, right.bbox]
