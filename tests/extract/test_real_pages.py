"""Failure classes of #11 on pages cut from real PDFs (tests/data/real/pages/, provenance in
provenance.json). Each page was cut with PyMuPDF (`insert_pdf` of that page alone), so the
producer's objects are kept; every gold box here was checked on a render of the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.extract import extract_book

PAGES = Path(__file__).resolve().parents[1] / "data" / "real" / "pages"


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def contains(outer, inner, pad: float = 0.5) -> bool:
    return (
        outer[0] - pad <= inner[0]
        and outer[1] - pad <= inner[1]
        and inner[2] <= outer[2] + pad
        and inner[3] <= outer[3] + pad
    )


@pytest.fixture(scope="module")
def figures():
    cache: dict[str, list] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = extract_book(PAGES / name)
        return cache[name]

    return get


def by_label(figs) -> dict:
    return {f.label: f for f in figs}


def test_running_head_in_caption_font_does_not_end_the_caption(figures):
    """Class 1. BMC (Acrobat Distiller): MuPDF emits the running head, set in the caption's
    font at 52 pt from the top, right after the caption; the caption swallowed it, spanned the
    page and the framed flow chart found no caption at all. Class 5 on the same page: the rule
    box around flow chart and caption ends where the caption starts."""
    figs = figures("bmc_example2_p7.pdf")
    assert [f.label for f in figs] == ["1"]
    f = figs[0]
    assert f.caption == "Figure 1 Patient flow pattern at the medical department, June 2010."
    assert f.caption_bbox[1] > 240 and f.caption_bbox[3] < 263
    assert iou(f.bbox, (56.7, 90.0, 290.6, 243.3)) > 0.9
    assert f.modality == "other"  # a flow chart drawn as paths


def test_side_by_side_vector_figures_with_captions_on_one_line(figures):
    """Class 2. Quartz: two drawn figures side by side, captions on one baseline. An imported
    plot's clipped-away page frame joined both drawings (and the running-head rule) into one
    cluster, which took the second caption only."""
    figs = by_label(figures("quartz_bagnell11_p7.pdf"))
    assert set(figs) == {"1", "2"}
    assert figs["1"].caption == "Figure 1. A visualization of the routing game."
    assert figs["2"].caption == (
        "Figure 2. Prediction error (log-loss) as a function of number of observations."
    )
    assert iou(figs["1"].bbox, (57.0, 69.0, 288.0, 245.0)) > 0.9
    assert iou(figs["2"].bbox, (307.5, 68.5, 540.5, 234.5)) > 0.9
    assert figs["1"].bbox[2] < 300 < figs["2"].bbox[0]


def test_axis_titles_and_ticks_belong_to_the_plot(figures):
    """Class 6. The y-axis title "Logloss" and the x-axis title "Number of observations" are
    text outside the drawn plot; they are part of the figure."""
    fig = by_label(figures("quartz_bagnell11_p7.pdf"))["2"]
    assert contains(fig.bbox, (308.0, 131.0, 316.5, 158.0))  # "Logloss"
    assert contains(fig.bbox, (402.5, 226.5, 485.0, 233.5))  # "Number of observations"
    assert fig.bbox[3] < fig.caption_bbox[1]
    assert contains(fig.panels[0].bbox, (308.0, 131.0, 316.5, 158.0))


def test_mentions_on_real_pages(figures):
    """Class 9: body citations found, the caption's own label not among them."""
    figs = by_label(figures("quartz_bagnell11_p7.pdf"))
    assert [m.text.startswith("Figure") for m in figs["1"].mentions] == [False]
    assert len(figs["2"].mentions) == 2
    assert all("routing game" not in m.text for m in figs["1"].mentions)


def test_images_of_one_figure_16pt_apart_and_offset_are_grouped(figures):
    """Class 3. PyPDF2 (CVPR paper): a row of four pictures, the right pair 16 pt from the left
    pair and set 16 pt lower (bottoms aligned), sub-captions "(a)" and "(b)" under each pair.
    Only the left pair was kept; all four belong to Figure 2, sub-captions inside its box."""
    figs = by_label(figures("pypdf2_ding11_p3.pdf"))
    assert set(figs) == {"2"}
    f = figs["2"]
    gold = [
        (111.4, 82.1, 205.9, 165.3),
        (209.0, 82.1, 303.4, 165.3),
        (319.3, 97.7, 409.5, 165.2),
        (413.1, 98.0, 502.7, 165.1),
    ]
    assert len(f.panels) == 4
    assert all(iou(p.bbox, g) > 0.95 for p, g in zip(f.panels, gold, strict=True))
    assert iou(f.bbox, (108.5, 82.0, 503.5, 179.5)) > 0.95  # with the "(a)"/"(b)" lines
    assert f.caption.startswith("Figure 2: The learned SCs of the instances")


def test_raster_charts_are_other_not_clinical(figures):
    """Class 10. PLOS ONE (PDFlib+PDI): two bar charts stored as images. Their captions name no
    modality (only "bars ... on the top", once read as clinical); the pixels are bare paper and
    ink with no tissue colour."""
    figs = by_label(figures("plos_e4faf2c1_p8.pdf"))
    assert set(figs) == {"1", "2"}
    for f in figs.values():
        assert f.modality == "other"
        assert [p.modality for p in f.panels] == ["other"]


def test_caption_continued_on_the_next_page(figures):
    """Class 7. PeerJ (pdfTeX): Figure 2's caption ends "(continued on next page...)" and goes
    on at the top of the next page as "Figure 2 (...continued) However, ...". One figure, one
    caption with both parts; the continuation is no second figure and no orphan."""
    figs = figures("peerj_test6_p5-6.pdf")
    assert [(f.label, f.page) for f in figs] == [("2", 1)]
    cap = figs[0].caption
    assert cap.startswith("Figure 2 Overview of the options available in the VESPA package.")
    assert "(as shown on the left most side of (C)). However, you may wish to generate" in cap
    assert cap.endswith("a function to import the output of MrBayes.")
    assert "continued" not in cap
    assert "caption_continued" in figs[0].flags


def test_touching_pictures_are_split_at_their_edges(figures):
    """Class 4. doPDF: Figure 10 is three charts placed edge to edge (no gutter), each its own
    image with its own pixel height; they were merged as tiles of one picture into a single
    panel. Three panels, cut at the image boundaries."""
    figs = by_label(figures("dopdf_grobid2_p5.pdf"))
    f = figs["10"]
    assert f.caption == "Figure 10. Throughput comparison of ZBR and AODV with varying node density"
    gold = [(70.0, 571.0, 225.0, 690.0), (225.0, 571.0, 380.0, 690.0), (380.0, 571.0, 534.0, 690.0)]
    assert len(f.panels) == 3
    assert all(iou(p.bbox, g) > 0.97 for p, g in zip(f.panels, gold, strict=True))
    assert iou(f.bbox, (70.0, 571.0, 534.0, 690.0)) > 0.97
    assert len(figs["9"].panels) == 3  # the row above, with narrow gaps, as before


def test_one_picture_stored_as_strips_stays_one_panel(figures):
    """Class 5 (tiles). Acrobat Distiller: Fig. 1 is one flow chart stored as three stacked
    strips of 945 x 113 pixels; it is one figure with one panel, and a diagram."""
    figs = figures("distiller_wang_p3.pdf")
    assert [f.label for f in figs] == ["1"]
    f = figs[0]
    assert len(f.panels) == 1
    assert iou(f.bbox, (71.0, 99.0, 525.0, 260.0)) > 0.97
    assert f.caption.startswith("Fig. 1. Our AVE system uses the RTE system")
    assert f.modality == "other"
