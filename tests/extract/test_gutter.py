"""Splitting a figure cuts along the white gutter between its panels, not at the middle."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from curation.extract.gutter import cut_box, find_gutter


def _noisy(img: Image.Image, seed: int = 0) -> Image.Image:
    """Through JPEG at a modest quality, as the page previews are stored."""
    rng = np.random.default_rng(seed)
    array = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, size=(img.height, img.width, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=75)
    return Image.open(io.BytesIO(buf.getvalue()))


def _two_panels(size, first, second, margin=6) -> Image.Image:
    """White paper with two 'photographs' (textured rectangles) at the given boxes."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for box, colour in ((first, (180, 70, 60)), (second, (70, 90, 170))):
        draw.rectangle(box, fill=colour)
        for y in range(box[1], box[3], 7):  # some texture, with light streaks
            draw.line((box[0], y, box[2], y), fill=(230, 200, 190))
    return img


@pytest.mark.parametrize("gap", [(60, 72), (140, 150), (225, 240)])
def test_side_by_side_gutter_off_centre(gap):
    left = (6, 6, gap[0] - 1, 114)
    right = (gap[1], 6, 293, 114)
    img = _noisy(_two_panels((300, 120), left, right))
    g = find_gutter(img, vertical=True)
    assert g.found, g
    middle = (gap[0] + gap[1]) / 2 / 300
    assert abs(g.at - middle) < 2 / 300, (g.at, middle)
    if gap != (140, 150):
        assert abs(g.at - 0.5) > 0.1  # a real gutter, not the middle


def test_stacked_gutter_off_centre():
    top = (5, 5, 195, 60)
    bottom = (5, 70, 195, 295)
    img = _noisy(_two_panels((200, 300), top, bottom))
    g = find_gutter(img, vertical=False)
    assert g.found
    assert abs(g.at * 300 - 65) < 2
    # Looking along the other axis finds no interior white column.
    assert not find_gutter(img, vertical=True).found


def test_nearest_of_several_gutters_wins():
    img = Image.new("RGB", (400, 100), "white")
    draw = ImageDraw.Draw(img)
    for x0, x1 in ((5, 95), (105, 295), (305, 395)):  # gutters at 100 and 300
        draw.rectangle((x0, 5, x1, 95), fill=(120, 60, 60))
    assert abs(find_gutter(img, vertical=True, near=0.3).at * 400 - 100) < 2
    assert abs(find_gutter(img, vertical=True, near=0.7).at * 400 - 300) < 2


def test_no_gutter_falls_back_and_says_so():
    img = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(img).rectangle((10, 10, 290, 110), fill=(150, 110, 90))
    g = find_gutter(_noisy(img), vertical=True, near=0.5)
    assert not g.found and g.at == 0.5
    assert "No white gutter" in g.reason


def test_white_margins_are_not_gutters():
    """The white paper round a single photograph touches the box edge: a margin."""
    img = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(img).rectangle((40, 0, 250, 119), fill=(90, 90, 90))
    assert not find_gutter(img, vertical=True).found


def test_thin_white_line_inside_a_photo_loses_to_the_real_gutter():
    img = _two_panels((300, 100), (5, 5, 199, 95), (215, 5, 295, 95))
    ImageDraw.Draw(img).line((150, 0, 150, 99), fill="white")  # a 1 px streak near the middle
    g = find_gutter(img, vertical=True, near=0.5)
    assert abs(g.at * 300 - 207) < 2


def test_cut_box_maps_points_through_the_preview_scale():
    """A page preview at 2 px per point: the cut comes back in points, inside the box."""
    page = Image.new("RGB", (1190, 1684), "white")  # A4 at 144 dpi
    draw = ImageDraw.Draw(page)
    draw.rectangle((100, 120, 300, 800), fill=(170, 60, 60))  # points 50..150
    draw.rectangle((330, 120, 600, 800), fill=(60, 60, 170))  # points 165..300
    cut, g = cut_box(page, (595, 842), [50, 60, 300, 400], vertical=True)
    assert g.found and abs(cut - 157.5) < 1.0
    cut, g = cut_box(page, (595, 842), [50, 60, 300, 400], vertical=False)
    assert not g.found and cut == 230.0  # the middle of 60..400
