"""The modality features measure what their names say, on pictures drawn to show it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from curation.extract.modality import features as feats
from curation.samplebook import images


def _f(img: Image.Image) -> dict[str, float]:
    return dict(zip(feats.NAMES, feats.features(img), strict=True))


def _flat(rgb, size=(300, 200)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def test_vector_has_one_finite_value_per_name():
    v = feats.features(images.draw("clinical", np.random.default_rng(0), 320, 240))
    assert v.shape == (len(feats.NAMES),) and np.all(np.isfinite(v))


def test_stain_deconvolution_separates_eosin_pink_from_skin():
    pink = _f(_flat((235, 150, 200)))  # eosin
    purple = _f(_flat((90, 60, 150)))  # haematoxylin
    skin = _f(_flat((215, 170, 140)))
    assert pink["hed_e_mean"] > skin["hed_e_mean"]
    assert purple["hed_h_mean"] > skin["hed_h_mean"] and purple["hed_h_mean"] > pink["hed_h_mean"]
    brown = _f(_flat((150, 100, 50)))  # DAB of immunohistochemistry
    assert brown["hed_d_mean"] > pink["hed_d_mean"]


def test_field_shape_sees_a_lit_disc_in_dark_corners():
    img = _flat((10, 10, 14))
    ImageDraw.Draw(img).ellipse((40, 10, 260, 190), fill=(200, 150, 130))
    disc, full = _f(img), _f(_flat((200, 150, 130)))
    assert disc["corner_dark"] > 0.8 and full["corner_dark"] == 0
    assert disc["centre_minus_corner"] > 0.4 > full["centre_minus_corner"]


def test_flat_colour_and_paper_mark_a_chart():
    chart = _flat((255, 255, 255))
    d = ImageDraw.Draw(chart)
    for i, h in enumerate((60, 120, 90, 150)):
        d.rectangle((30 + i * 60, 180 - h, 70 + i * 60, 180), fill=(40, 90, 200))
    d.line((20, 180, 290, 180), fill=(0, 0, 0), width=2)
    c = _f(chart)
    photo = _f(images.draw("clinical", np.random.default_rng(1), 300, 200))
    assert c["top8_colours"] > 0.9 > photo["top8_colours"]
    assert c["white_share"] > 0.5 > photo["white_share"]
    assert photo["skin_share"] > c["skin_share"]


def test_png_and_jpeg_bytes_are_read_like_images():
    img = images.draw("dermoscopic", np.random.default_rng(2), 400, 300)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert np.allclose(feats.features(buf.getvalue()), feats.features(img))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    jpeg, png = feats.features(buf.getvalue()), feats.features(img)
    other = feats.features(images.draw("pathological", np.random.default_rng(2), 400, 300))
    assert np.abs(jpeg - png).mean() < 0.2 * np.abs(other - png).mean()


def test_bad_input_is_refused_clearly():
    with pytest.raises(Exception, match="cannot identify"):
        feats.features(b"not an image")
    with pytest.raises(ValueError, match="empty"):
        feats.features(Image.new("RGB", (0, 0)))
