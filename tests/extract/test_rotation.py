"""Pages with /Rotate: boxes in PyMuPDF's page coordinates, crops as the reader sees them.

PyMuPDF reports text and image boxes in the unrotated page; only `page.rect` turns with
/Rotate, and `get_pixmap(clip=...)` takes its clip in the turned page. Two kinds of rotated
page occur: content drawn normally and then turned (the reader sees it sideways; that case is
in test_extract.py), and a landscape page drawn turned so that /Rotate sets it upright, as
scanners and landscape figures in portrait books do. The second must be read upright: caption
below its figure, panels left to right.
"""

from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from curation.extract import extract_book
from curation.extract.crop import render_box, render_boxes

BLUE, YELLOW = (0, 0, 255), (255, 255, 0)
RED, GREEN = (200, 50, 50), (40, 160, 60)
CAPTION = (
    "Fig. 2.1 Psoriasis in a 40-year-old man. (a) Clinical photograph of plaques",
    "on the elbow. (b) Dermoscopy showing dotted vessels in a regular distribution.",
)
BODY = "The typical appearance of psoriasis on the elbow is shown in Fig. 2.1a, b."


def _png(fill, corner) -> bytes:
    """A 300x200 picture with a marked top-left corner, to tell which way up a crop is."""
    img = Image.new("RGB", (300, 200), fill)
    img.paste(corner, (0, 0, 60, 40))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _landscape_page(path, rotation: int):
    """A portrait page (595 x 842) with /Rotate `rotation`, its content drawn so that it reads
    upright on screen (landscape for 90 and 270). Returns the panels' boxes in PyMuPDF's
    (unrotated) page coordinates."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.set_rotation(rotation)
    to_pdf = page.derotation_matrix  # screen (turned page) -> PyMuPDF's page coordinates

    def text(x, y, s, size):
        page.insert_text(pymupdf.Point(x, y) * to_pdf, s, fontsize=size, rotate=rotation)

    text(50, 80, BODY, 10)
    boxes = []
    for i, (fill, corner) in enumerate(((RED, BLUE), (GREEN, YELLOW))):
        screen = pymupdf.Rect(50 + i * 256, 110, 290 + i * 256, 270)
        rect = screen * to_pdf
        page.insert_image(rect, stream=_png(fill, corner), rotate=rotation)
        boxes.append(tuple(round(v, 2) for v in rect))
    text(50, 288, CAPTION[0], 9)
    text(50, 299, CAPTION[1], 9)
    doc.save(path)
    return boxes


def _img(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _near(a, b, tol=30) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_landscape_page_drawn_for_rotate_is_read_upright(tmp_path, rotation):
    path = tmp_path / f"rot{rotation}.pdf"
    boxes = _landscape_page(path, rotation)
    (fig,) = extract_book(path)
    assert fig.label == "2.1"
    assert fig.caption == " ".join(CAPTION)
    assert "caption_beside" not in fig.flags and "letters_mismatch" not in fig.flags
    assert (fig.age, fig.sex) == (40, "male")
    assert [m.text for m in fig.mentions] == [BODY]
    # Boxes are in PyMuPDF's page coordinates: those of the unrotated page.
    assert [p.letter for p in fig.panels] == ["a", "b"]
    assert [p.bbox for p in fig.panels] == boxes
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    assert fig.bbox == (x0, y0, max(b[2] for b in boxes), max(b[3] for b in boxes))
    assert fig.panels[0].subcaption.startswith("Clinical photograph")
    assert fig.panels[1].modality == "dermoscopic"
    # Crops are upright as the reader sees them: landscape, marked corner at the top left.
    for panel, (fill, corner) in zip(fig.panels, ((RED, BLUE), (GREEN, YELLOW)), strict=True):
        img = _img(panel.image_png)
        assert img.width > img.height
        assert _near(img.getpixel((8, 8)), corner)
        assert _near(img.getpixel((img.width // 2, img.height // 2)), fill)
        # The expert-redraw crop renderer agrees for the same box.
        again = _img(render_box(path, 1, panel.bbox))
        assert again.size == img.size and _near(again.getpixel((8, 8)), corner)
    whole = _img(fig.image_png)
    assert whole.width > 2 * whole.height and _near(whole.getpixel((8, 8)), BLUE)


def test_render_boxes_turns_with_the_page(tmp_path):
    """A page drawn normally, then given /Rotate 90: a box near the foot of the unrotated page
    (beyond the turned page's height) is rendered, turned as on screen."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_image(pymupdf.Rect(100, 600, 400, 800), stream=_png(RED, BLUE))
    page.set_rotation(90)
    path = tmp_path / "foot.pdf"
    doc.save(path)
    (png,) = render_boxes(path, 1, [(100, 600, 400, 800)], dpi=72)
    img = _img(png)
    assert img.size == (200, 300)  # 300 x 200 points, turned a quarter
    assert _near(img.getpixel((100, 150)), RED)
    # A quarter turn clockwise puts the image's top-left corner at the crop's top right.
    assert _near(img.getpixel((img.width - 8, 8)), BLUE)
    with pytest.raises(ValueError):
        render_box(path, 1, (600, 100, 700, 200))  # right of the unrotated page
