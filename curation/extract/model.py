"""Plain dataclasses passed between the extraction steps and handed to the platform."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

Box = tuple[float, float, float, float]

# The sex contract, from the extractor to the release: one of these, or None when the text does
# not say. The platform's ``Sex`` choices are these values.
FEMALE = "female"
MALE = "male"
SEXES = (FEMALE, MALE)


@dataclass
class PdfInfo:
    page_count: int
    title: str
    author: str
    # Most sampled pages have no text layer: a scan, where no caption can be found without OCR.
    likely_scanned: bool = False


@dataclass
class PageInfo:
    number: int  # 1-based
    width: float
    height: float
    text: str
    section: list[str]


@dataclass
class PanelInfo:
    index: int
    letter: str | None
    bbox: Box
    subcaption: str
    image_png: bytes
    modality: str
    modality_confidence: float
    # Review flags of this panel alone (`face`, `annotation_marks`); the figure's `flags` hold
    # them too, with the extractor's own notes (caption position, low resolution, ...).
    flags: list[str] = field(default_factory=list)
    # How sure the extractor is of this panel's box and text, in [0, 1], and why not more
    # (`confidence.assess`); it already includes the figure's own doubts.
    confidence: float = 1.0
    doubts: list[str] = field(default_factory=list)
    # The pixel model that took part in the modality suggestion ("" when none did), and the
    # most likely class when `modality` is "unknown" (the evidence was below the threshold).
    modality_model: str = ""
    modality_best: str = ""


@dataclass
class Mention:
    page: int
    text: str


@dataclass
class FigureInfo:
    label: str
    page: int
    bbox: Box
    caption: str
    caption_bbox: Box | None
    image_png: bytes
    panels: list[PanelInfo]
    modality: str
    modality_confidence: float
    section: list[str]
    diagnosis: str
    age: int | None
    sex: str | None  # FEMALE, MALE or None
    flags: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    caption_page: int | None = None  # differs from `page` when the caption is on the next page
    # How sure the extractor is of the figure (box, caption, panels), and why not more.
    confidence: float = 1.0
    doubts: list[str] = field(default_factory=list)


@dataclass
class ChunkResult:
    pages: list[PageInfo]
    figures: list[FigureInfo]
    orphans: list[dict]


@dataclass
class FigureRef:
    label: str
    page: int


@dataclass
class LinkResult:
    figures: list[FigureInfo]
    mentions: dict[str, list[Mention]]
    # label -> section path where the figure is first cited; a figure floated past the next
    # heading belongs to the section that discusses it.
    sections: dict[str, list[str]] = field(default_factory=dict)


def mention_dict(m: Mention) -> dict:
    """JSON form of a mention."""
    return asdict(m)
