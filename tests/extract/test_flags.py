"""Review flags: `face` (OpenCV's Haar cascade) and `annotation_marks` (vector paths on a photo,
or marker-coloured strokes in its pixels), on drawn images, a hand-made page and a sample book."""

from __future__ import annotations

import io
import logging
import sys

import numpy as np
import pymupdf
import pytest

from curation.extract import extract_book
from curation.extract import flags as review_flags
from curation.samplebook import images

pytest.importorskip("cv2")

SIZES = [(600, 450), (400, 300), (300, 225), (450, 600)]


def test_drawn_faces_are_found_and_other_pictures_are_not():
    faces = [images.face(np.random.default_rng(s), w, h) for s in range(6) for w, h in SIZES]
    found = sum(review_flags.has_face(f) for f in faces)
    assert found >= 0.85 * len(faces), found
    others = [
        images.draw(m, np.random.default_rng(s), 600, 450)
        for m in ("clinical", "dermoscopic", "pathological")
        for s in range(10)
    ]
    assert not [i for i, img in enumerate(others) if review_flags.has_face(img)]


def test_burned_marks_found_and_clean_pictures_pass():
    clean = [
        images.draw(m, np.random.default_rng(s), 480, 360)
        for m in ("clinical", "dermoscopic", "pathological")
        for s in range(8)
    ]
    assert not [i for i, img in enumerate(clean) if review_flags.burned_marks(img)]
    marked = [images.burn_marks(img, np.random.default_rng(i)) for i, img in enumerate(clean)]
    assert all(review_flags.burned_marks(img) for img in marked)
    # A panel letter printed in white is not an annotation.
    from PIL import ImageDraw, ImageFont

    lettered = clean[0].copy()
    ImageDraw.Draw(lettered).text((8, 4), "a", fill="white", font=ImageFont.load_default(26))
    assert not review_flags.burned_marks(lettered)


def test_vector_marks_ignore_frames_and_outside_paths():
    panel = (100.0, 100.0, 300.0, 250.0)
    assert review_flags.vector_marks(panel, [(150, 150, 200, 200)])  # a circle on the photo
    assert review_flags.vector_marks(panel, [(150, 120, 220, 120)])  # a horizontal arrow shaft
    assert not review_flags.vector_marks(panel, [(99, 99, 301, 251)])  # a frame
    assert not review_flags.vector_marks(panel, [(100, 250, 300, 250)])  # a rule along an edge
    assert not review_flags.vector_marks(panel, [(320, 150, 360, 200)])  # beside it


def test_without_opencv_no_face_flag_and_one_warning(monkeypatch, caplog):
    review_flags._cascade.cache_clear()
    monkeypatch.setattr(review_flags, "_warned", False)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    face = images.face(np.random.default_rng(0))
    try:
        with caplog.at_level(logging.WARNING, logger="curation.extract.flags"):
            assert review_flags.has_face(face) is False
            assert review_flags.has_face(face) is False
        assert len([r for r in caplog.records if "opencv" in r.getMessage()]) == 1
    finally:
        review_flags._cascade.cache_clear()


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _hand_made_page() -> bytes:
    """Four captioned photographs: a face, one with a vector circle and arrow drawn over it
    (in a mid blue, not a marker colour, so only the paths can tell), one with a thin frame
    around it, and a clean one."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    rng = np.random.default_rng(5)
    pictures = [
        images.face(rng, 480, 360),
        images.draw("clinical", rng, 480, 360),
        images.draw("clinical", rng, 480, 360),
        images.draw("clinical", rng, 480, 360),
    ]
    boxes = [(150, 60 + 190 * i, 350, 210 + 190 * i) for i in range(4)]
    for i, (img, box) in enumerate(zip(pictures, boxes, strict=True)):
        rect = pymupdf.Rect(box)
        page.insert_image(rect, stream=_png(img))
        page.insert_text(
            (rect.x0, rect.y1 + 16), f"Fig. 1.{i + 1} Eczema on the cheek.", fontsize=9
        )
    shape = page.new_shape()
    r = pymupdf.Rect(boxes[1])
    shape.draw_circle(pymupdf.Point(r.x0 + 100, r.y0 + 80), 25)
    shape.draw_line(pymupdf.Point(r.x0 + 170, r.y0 + 25), pymupdf.Point(r.x0 + 130, r.y0 + 60))
    shape.finish(color=(0.2, 0.4, 0.8), width=1.5)
    shape.commit()
    frame = pymupdf.Rect(boxes[2])
    page.draw_rect(
        (frame.x0 - 1, frame.y0 - 1, frame.x1 + 1, frame.y1 + 1), color=(0, 0, 0), width=0.8
    )
    return doc.tobytes()


def test_hand_made_page_flags(tmp_path):
    path = tmp_path / "flags.pdf"
    path.write_bytes(_hand_made_page())
    figures = {f.label: f for f in extract_book(path)}
    assert sorted(figures) == ["1.1", "1.2", "1.3", "1.4"]
    assert "face" in figures["1.1"].flags
    assert "annotation_marks" not in figures["1.1"].flags
    assert "annotation_marks" in figures["1.2"].flags
    assert figures["1.2"].panels[0].flags == ["annotation_marks"]
    for label in ("1.3", "1.4"):  # a frame is not a mark; a clean photo has no flag
        assert not {"face", "annotation_marks"} & set(figures[label].flags), label


def test_sample_book_flags_match_gold(sample_book, sample_figures):
    _, gold = sample_book
    kinds = {m for g in gold.figures for m in g.marks.split("+") if m}
    assert kinds == {"vector", "raster"}
    assert any("face" in g.flags for g in gold.figures)
    got = {(f.page, f.label): f for f in sample_figures}
    wrong = []
    for g in gold.figures:
        f = got.get((g.page, g.label))
        assert f is not None, g.label
        for flag in ("face", "annotation_marks"):
            if (flag in g.flags) != (flag in f.flags):
                wrong.append((g.label, flag, g.marks))
        for gp, p in zip(g.panels, f.panels, strict=False):
            if set(gp.flags) != set(p.flags) & {"face", "annotation_marks"}:
                wrong.append((g.label, gp.letter, gp.flags, p.flags))
    assert not wrong
