"""Extraction confidence: how sure the extractor is of each figure and panel, and why not more.

An expert's time goes furthest on the pairs the extractor doubts. Every figure and panel gets a
`confidence` in [0, 1] and a list of `doubts`, the reasons it is below 1. Each reason costs a
fixed share of the confidence (see `PENALTY`); shares multiply, so two doubts weigh more than
one but never drive the value below 0. A panel inherits its figure's doubts and adds its own, so
a panel's confidence never exceeds its figure's: a reviewer ordering pairs by it sees the pair's
whole story.

When unsure, keep the whole figure and flag it rather than guess: a caption that names clearly
more or fewer panels than were found (`letters_mismatch` by two or more) means the panel split
is a guess, so the panels fall back to one whole-figure panel (`panels_collapsed`). The expert
then splits it in the panel editor, instead of reviewing wrong crops with the wrong sub-captions.
"""

from __future__ import annotations

import re

from .annotate import parse_label, split_subcaptions
from .model import Box, FigureInfo, PanelInfo

# Reason -> share of the confidence it costs.
PENALTY: dict[str, float] = {
    # Figure-level.
    "no_caption": 0.5,  # the caption is a bare label: nothing to review the picture against
    "caption_far": 0.3,  # caption more than CAPTION_FAR_PT from the figure
    "caption_on_other_page": 0.2,  # joined across a page break
    "caption_beside": 0.1,  # caption set beside the figure, the rarest placement
    "letters_mismatch": 0.35,  # the caption names another number of panels than were found
    "panels_collapsed": 0.1,  # ... by so many that the figure is kept whole (see above)
    "tiles_merged": 0.15,  # the picture was stored as strips or tiles, joined here
    "drawing": 0.15,  # a vector drawing: its extent comes from clustering paths
    "ocr": 0.15,  # caption and boxes were read from a page image by OCR
    "ocr_garbled": 0.25,  # ... and the caption reads like OCR noise
    "low_resolution": 0.1,  # a panel printed below LOW_PPI
    # Panel-level.
    "letter_inferred": 0.1,  # no printed letter and no caption letter: a..z assigned in order
    "split_from_composite": 0.1,  # cut from one raster along white gutters
}
FIGURE_REASONS = (
    "no_caption",
    "caption_far",
    "caption_on_other_page",
    "caption_beside",
    "letters_mismatch",
    "panels_collapsed",
    "tiles_merged",
    "drawing",
    "ocr",
    "ocr_garbled",
    "low_resolution",
)
PANEL_REASONS = ("letter_inferred", "split_from_composite")
CAPTION_FAR_PT = 30.0  # captions sit 4-20 pt from their figure in the books seen so far
COLLAPSE_AT = 2  # panels found differ from those the caption names by this many or more
GARBLED_SHARE = 0.12  # share of caption tokens that look like OCR noise
# A token is noise when it mixes letters with symbols no caption word has ("l|ke", "ﬁ#3").
_NOISE = re.compile(r"[^\w\s.,;:()\[\]'\"\u2019\u2013\u2014/%+=°&-]")


def caption_gap(figure: Box, caption: Box) -> float:
    """Points of white between the figure box and its caption box (0 when they touch)."""
    dx = max(caption[0] - figure[2], figure[0] - caption[2], 0.0)
    dy = max(caption[1] - figure[3], figure[1] - caption[3], 0.0)
    return max(dx, dy)


def garbled(text: str) -> bool:
    """Whether a caption reads like OCR noise: many tokens with stray symbols or no letters."""
    tokens = text.split()
    if not tokens:
        return False
    bad = sum(1 for t in tokens if _NOISE.search(t) or not re.search(r"[A-Za-z0-9]", t))
    return bad / len(tokens) > GARBLED_SHARE


def score(reasons: list[str]) -> float:
    """Confidence left after the reasons' penalties."""
    value = 1.0
    for r in reasons:
        value *= 1.0 - PENALTY.get(r, 0.0)
    return round(value, 3)


def whole_figure_panel(fig: FigureInfo, body: str) -> PanelInfo:
    """The one panel a figure falls back to: the whole figure box, crop and caption."""
    best = max(fig.panels, key=lambda p: p.modality_confidence)
    flags = sorted({f for p in fig.panels for f in p.flags})
    return PanelInfo(
        0, None, fig.bbox, body, fig.image_png, best.modality, best.modality_confidence, flags
    )


def assess(
    fig: FigureInfo, *, ocr: bool = False, tiles: int = 1, drawing: bool = False
) -> FigureInfo:
    """Set `confidence` and `doubts` on the figure and its panels (in place; returned).

    `ocr`: the page was read by OCR; `tiles`: the most strips one of its pictures was stored
    as; `drawing`: the figure is a vector drawing. The rest is read off the figure itself.
    """
    parsed = parse_label(fig.caption)
    body = fig.caption[parsed[1] :].strip() if parsed else fig.caption.strip()
    reasons: list[str] = []
    if not re.search(r"[A-Za-z]{2}", body):
        reasons.append("no_caption")
    other_page = fig.caption_page is not None and fig.caption_page != fig.page
    if other_page or "caption_on_other_page" in fig.flags:
        reasons.append("caption_on_other_page")
    elif fig.caption_bbox is not None and caption_gap(fig.bbox, fig.caption_bbox) > (
        CAPTION_FAR_PT
    ):
        reasons.append("caption_far")
    if "caption_beside" in fig.flags:
        reasons.append("caption_beside")
    named = len(split_subcaptions(fig.caption)[1])
    found = len(fig.panels)
    if named >= 2 and found != named:
        reasons.append("letters_mismatch")
        if abs(found - named) >= COLLAPSE_AT and found > 1:
            fig.panels = [whole_figure_panel(fig, body)]
            fig.modality = fig.panels[0].modality
            fig.modality_confidence = fig.panels[0].modality_confidence
            reasons.append("panels_collapsed")
            fig.flags = sorted(
                {*fig.flags, "panels_collapsed"}
                - {"split_from_composite", "panel_letters_inferred"}
            )
    if tiles > 1:
        reasons.append("tiles_merged")
    if drawing:
        reasons.append("drawing")
    if ocr:
        reasons.append("ocr")
        if garbled(fig.caption):
            reasons.append("ocr_garbled")
    if "low_resolution" in fig.flags:
        reasons.append("low_resolution")
    fig.doubts = reasons
    fig.confidence = score(reasons)
    own: list[str] = []
    if "panel_letters_inferred" in fig.flags and len(fig.panels) > 1:
        own.append("letter_inferred")
    if "split_from_composite" in fig.flags and len(fig.panels) > 1:
        own.append("split_from_composite")
    for p in fig.panels:
        p.doubts = [*reasons, *own]
        p.confidence = score(p.doubts)
    return fig


__all__ = ["PENALTY", "assess", "caption_gap", "garbled", "score", "whole_figure_panel"]
