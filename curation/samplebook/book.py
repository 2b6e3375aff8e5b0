"""Lay out a procedurally generated dermatology atlas and record the ground truth.

The generator is a tiny flow-layout engine on PyMuPDF: paragraphs fill columns top to bottom, a
figure is queued when a paragraph first cites it and is placed in the next gap that can hold it.
Because the generator knows where it put every image, caption and citation, it returns gold data
that the extractor's tests and benchmark score against. Book styles (`STYLES`) vary the layout
the way real atlases do: columns, caption position and font, label format, panel arrangement,
tables and decorative images that are not figures.

`compose` holds every content draw and drives a producer's writer: `_Writer` here draws with
PyMuPDF; `chromium.HtmlWriter` sets the same story as HTML in its own typography and prints it
with headless Chromium, so the extractor is measured on two producers' PDF internals.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFont

from curation.extract.model import FEMALE, MALE

from . import content, images

# Shares of single pictures drawn as a face (of clinical ones), with arrows/circles burned into
# the pixels, or with arrows/circles drawn over them as vector paths.
FACE_SHARE = 0.12
RASTER_MARK_SHARE = 0.07
VECTOR_MARK_SHARE = 0.07
VECTOR_MARK_COLOURS = [(1, 1, 0), (1, 1, 1), (0, 0, 0), (0.1, 0.35, 0.95)]

PAGE_W, PAGE_H = 595.0, 842.0
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 62.0, 62.0, 66.0, 70.0
TEXT_W = PAGE_W - MARGIN_L - MARGIN_R
COL_GAP = 18.0
BODY_FONT, BODY_SIZE, BODY_LEAD = "tiro", 10.0, 13.0
HEAD_FONT = "hebo"
GUTTER = 6.0
FIXED_DATE = "D:20250101000000Z"
LETTERS = "abcdefgh"

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class BookStyle:
    """How one publisher lays out figures; each knob maps to a failure mode of extractors."""

    name: str
    columns: int = 1
    label_word: str = "Fig."
    label_sep: str = "."
    cap_label_font: str = "hebo"
    cap_font: str = "helv"
    cap_size: float = 8.5
    kinds: tuple[tuple[str, float], ...] = (("single", 0.5), ("row2", 0.3), ("row3", 0.2))
    positions: tuple[tuple[str, float], ...] = (("below", 1.0),)
    tables: float = 0.0  # chance per section of a table (which is not a figure)
    banners: bool = False  # decorative chapter-opening image without a caption
    ref_first: float = 0.0  # chance a citing paragraph starts with "Figure 3-2 shows"
    multi_refs: float = 0.0  # chance of "Figs. 3.2-3.4" citing several figures at once
    shared_letters: float = 0.0  # chance of "(a, b) Clinical photographs ..." markers
    outline: bool = True
    gutter: float = GUTTER  # space between panels; wider than the merge distance is harder
    letters_below: bool = False  # panel letters printed under each panel instead of on it
    upper_letters: float = 0.0  # chance of "(A)" markers and "A" on the panels
    silent_modality: float = 0.0  # chance a sub-caption does not name its modality
    pairs: float = 0.0  # chance two single figures share a row, each with its own caption
    tiles: float = 0.0  # chance a picture is stored as three abutting horizontal strips
    vectors: float = 0.0  # chance a figure is a captioned vector diagram (kind "vector")
    vector_decor: float = 0.0  # chance a paragraph is boxed; >0 also draws a header bar

    @property
    def cap_lead(self) -> float:
        return self.cap_size + 2.0


STYLES: dict[str, BookStyle] = {
    "classic": BookStyle("classic"),
    "varied": BookStyle(
        "varied",
        label_word="Figure",
        label_sep="-",
        cap_label_font="tibi",
        cap_font="tiro",
        cap_size=9.0,
        kinds=(
            ("single", 0.3),
            ("row2", 0.15),
            ("row3", 0.1),
            ("grid4", 0.15),
            ("composite2", 0.12),
            ("composite3", 0.08),
            ("composite4", 0.1),
        ),
        positions=(("below", 0.45), ("above", 0.2), ("beside", 0.2), ("next_page", 0.15)),
        tables=0.35,
        banners=True,
        ref_first=0.2,
        multi_refs=0.3,
        shared_letters=0.3,
        vectors=0.12,
        vector_decor=0.12,
    ),
    "hard": BookStyle(
        "hard",
        kinds=(("single", 0.45), ("row2", 0.25), ("row3", 0.15), ("grid4", 0.15)),
        positions=(("below", 0.8), ("above", 0.2)),
        tables=0.2,
        ref_first=0.2,
        multi_refs=0.3,
        shared_letters=0.2,
        gutter=18.0,
        letters_below=True,
        upper_letters=0.5,
        silent_modality=0.5,
        pairs=0.6,
        tiles=0.2,
        vector_decor=0.15,
    ),
    "twocol": BookStyle(
        "twocol",
        columns=2,
        label_word="FIG.",
        cap_label_font="hebo",
        cap_font="helv",
        cap_size=8.0,
        kinds=(("single", 0.5), ("row2", 0.2), ("grid4", 0.15), ("composite2", 0.15)),
        positions=(("below", 0.7), ("above", 0.3)),
        tables=0.3,
        ref_first=0.15,
        multi_refs=0.3,
        outline=False,
        vectors=0.15,
        vector_decor=0.1,
    ),
}


def random_style(seed: int) -> BookStyle:
    """A book style with every knob drawn at random: a generalisation check for the extractor,
    whose rules were written against the named styles."""
    r = np.random.default_rng(seed + 7919)

    def pick(seq):
        return seq[int(r.integers(len(seq)))]

    def weights(names: list[str]) -> tuple[tuple[str, float], ...]:
        w = r.random(len(names)) + 0.05
        return tuple(zip(names, (w / w.sum()).round(3).tolist(), strict=True))

    columns = pick([1, 1, 2])
    label_font, cap_font = pick(
        [("hebo", "helv"), ("tibo", "tiro"), ("tibi", "tiro"), ("hebo", "tiro"), ("helv", "helv")]
    )
    kinds = ["single", "row2", "row3", "grid4", "composite2", "composite3", "composite4"]
    positions = ["below", "above"] + (["beside", "next_page"] if columns == 1 else [])
    return BookStyle(
        f"random{seed}",
        columns=columns,
        label_word=pick(["Fig.", "Figure", "FIG.", "Fig", "FIGURE"]),
        label_sep=pick([".", "-", "."]),
        cap_label_font=label_font,
        cap_font=cap_font,
        cap_size=float(pick([7.5, 8.0, 8.5, 9.0])),
        kinds=weights(kinds),
        positions=weights(positions),
        tables=float(r.uniform(0, 0.4)),
        banners=bool(r.random() < 0.5),
        ref_first=float(r.uniform(0, 0.3)),
        multi_refs=float(r.uniform(0, 0.4)),
        shared_letters=float(r.uniform(0, 0.3)),
        outline=bool(r.random() < 0.6),
        gutter=float(pick([2.0, 4.0, 6.0, 10.0, 16.0, 22.0])),
        letters_below=bool(r.random() < 0.3),
        upper_letters=float(pick([0.0, 0.0, 1.0])),
        silent_modality=float(r.uniform(0, 0.6)),
        pairs=float(r.uniform(0, 0.5)) if columns == 1 else 0.0,
        tiles=float(r.uniform(0, 0.2)),
    )


@dataclass
class GoldPanel:
    letter: str | None
    bbox: Box
    subcaption: str
    modality: str
    flags: list[str] = field(default_factory=list)  # face | annotation_marks


@dataclass
class GoldMention:
    page: int
    text: str


@dataclass
class GoldFigure:
    label: str
    page: int
    bbox: Box
    caption: str
    caption_bbox: Box
    caption_page: int
    panels: list[GoldPanel]
    modality: str
    age: int | None
    sex: str | None
    diagnosis: str
    section: list[str]
    style: str  # single | row2 | row3 | grid4 | composite2..4 | vector | side_by_side
    mentions: list[GoldMention] = field(default_factory=list)
    caption_position: str = "below"  # below | above | beside | next_page
    layout: str = "1col"
    # Review flags of the figure (the union of its panels'): face | annotation_marks
    flags: list[str] = field(default_factory=list)
    # How the marks were made, for the benchmark: vector (paths over the image) | raster
    marks: str = ""


@dataclass
class GoldDecoy:
    """Something that looks figure-like but must not be extracted as a figure (tables, art)."""

    kind: str
    page: int
    bbox: Box
    caption: str = ""


@dataclass
class GoldBook:
    path: str
    title: str
    page_count: int
    seed: int
    figures: list[GoldFigure]
    style: str = "classic"
    decoys: list[GoldDecoy] = field(default_factory=list)
    producer: str = "pymupdf"

    def to_json(self) -> str:
        """Serialise for `--gold`; tuples become lists."""
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> GoldBook:
        """Load what `to_json` wrote, for benchmarks run against a saved book."""
        raw = json.loads(text)
        figs = []
        for f in raw["figures"]:
            f["panels"] = [GoldPanel(**{**p, "bbox": tuple(p["bbox"])}) for p in f["panels"]]
            f["mentions"] = [GoldMention(**m) for m in f["mentions"]]
            f["bbox"] = tuple(f["bbox"])
            f["caption_bbox"] = tuple(f["caption_bbox"])
            figs.append(GoldFigure(**f))
        raw["figures"] = figs
        raw["decoys"] = [GoldDecoy(**{**d, "bbox": tuple(d["bbox"])}) for d in raw["decoys"]]
        return cls(**raw)


_WIDTHS: dict[str, dict[str, float]] = {}


def text_width(text: str, font: str, size: float) -> float:
    """Width of `text` in a Base-14 font; per-character cache, since insert_text never kerns."""
    table = _WIDTHS.setdefault(font, {})
    total = 0.0
    for ch in text:
        w = table.get(ch)
        if w is None:
            w = table[ch] = pymupdf.get_text_length(ch, fontname=font, fontsize=1.0)
        total += w
    return total * size


def wrap(text: str, font: str, size: float, width: float, first_indent: float = 0.0) -> list[str]:
    """Greedy word wrap using the Base-14 font metrics PyMuPDF will draw with."""
    lines: list[str] = []
    cur = ""
    avail = width - first_indent
    for word in text.split():
        trial = f"{cur} {word}" if cur else word
        if cur and text_width(trial, font, size) > avail:
            lines.append(cur)
            cur = word
            avail = width
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


@dataclass
class FigureSpec:
    """A figure waiting to be placed: what to draw and what its caption says."""

    label: str
    modalities: list[str]
    caption: str
    subcaptions: list[str]
    age: int | None
    sex: str | None
    diagnosis: str
    section: list[str]
    kind: str = "single"
    position: str = "below"
    upper: bool = False
    mentions: list[GoldMention] = field(default_factory=list)
    diagram: str = ""  # for kind "vector": layers | body
    gold: GoldFigure | None = None


def _box(r: pymupdf.Rect) -> Box:
    return (round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2))


def _weighted(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in options]
    weights = np.asarray([w for _, w in options], float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


COMPOSITE_PANEL = (320, 240, 12)  # panel width, height and white gutter, in pixels


def composite_layout(n: int) -> tuple[int, int, list[tuple[float, float, float, float]]]:
    """Columns, rows and each panel's box as fractions of a composite of `n` panels."""
    pw, ph, gut = COMPOSITE_PANEL
    cols, rows = (2, 2) if n == 4 else (n, 1)
    total_w, total_h = cols * pw + (cols - 1) * gut, rows * ph + (rows - 1) * gut
    fracs = []
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = c * (pw + gut), r * (ph + gut)
        fracs.append((x / total_w, y / total_h, (x + pw) / total_w, (y + ph) / total_h))
    return cols, rows, fracs


def draw_composite(modalities: list[str], rng: np.random.Generator) -> Image.Image:
    """One raster holding several panels separated by white gutters, letters in the pixels
    (both producers draw the same composite)."""
    pw, ph, gut = COMPOSITE_PANEL
    cols, rows, _ = composite_layout(len(modalities))
    canvas = Image.new("RGB", (cols * pw + (cols - 1) * gut, rows * ph + (rows - 1) * gut), "white")
    font = ImageFont.load_default(size=26)
    for i, m in enumerate(modalities):
        r, c = divmod(i, cols)
        panel = images.draw(m, rng, pw, ph)
        ink = (0, 0, 0) if m == "pathological" else (255, 255, 255)
        ImageDraw.Draw(panel).text((8, 4), LETTERS[i], fill=ink, font=font)
        canvas.paste(panel, (c * (pw + gut), r * (ph + gut)))
    return canvas


def grid_cells(
    spec: FigureSpec, left: float, top: float, width: float, gutter: float, below: float
) -> list[tuple[float, float, float, float]]:
    """(x, y, w, h) of each panel of a row or grid figure `width` wide, letters `below` each."""
    n = len(spec.modalities)
    cols = 2 if spec.kind == "grid4" else n
    pw = (width - gutter * (cols - 1)) / cols
    ph = pw * 0.75
    return [
        (left + (i % cols) * (pw + gutter), top + (i // cols) * (ph + below + gutter), pw, ph)
        for i in range(n)
    ]


class FlowWriter:
    """Where figures go as text flows, shared by both producers: a queue of figures placed
    when they fit, side-by-side pairs, column and page breaks. Subclasses supply the page
    geometry (`room`, `new_page`) and the drawing (`place_figure`, `place_pair`)."""

    def _pick(self, seq: list[str]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    def advance(self) -> None:
        """Move to the next column, or to a new page after the last one."""
        if self.col + 1 < self.style.columns:
            self.col += 1
            self.y = self.col_top
            self.place_queued()
        else:
            self.new_page()

    def place_queued(self) -> None:
        while self.queue and not self.pending_caption:
            spec = self.queue[0]
            if self._pairable() and self.rng.random() < self.style.pairs:
                if not self.place_pair(self.queue[0], self.queue[1]):
                    return
                del self.queue[:2]
                continue
            _, _, total, _ = self._figure_total(spec)
            if self.room() < total:
                return
            self.queue.pop(0)
            self.place_figure(spec)

    def _pairable(self) -> bool:
        return (
            self.style.pairs > 0
            and self.style.columns == 1
            and len(self.queue) >= 2
            and all(s.kind == "single" and s.position == "below" for s in self.queue[:2])
        )


class _Writer(FlowWriter):
    """Owns the document, the current page, the column and the vertical cursor."""

    def __init__(
        self,
        title: str,
        style: BookStyle,
        rng: np.random.Generator,
        unique_images: int,
        seed: int = 0,
    ) -> None:
        self.doc = pymupdf.open()
        self.title = title
        self.style = style
        self.rng = rng
        self.page: pymupdf.Page | None = None
        self.col = 0
        self.col_top = MARGIN_T
        self.y = MARGIN_T
        self.chapter_head = ""
        self.queue: list[FigureSpec] = []
        self.pending_caption: tuple[FigureSpec, list[str]] | None = None
        self.unique_images = unique_images
        self.image_pool: dict[tuple, tuple[int, list]] = {}
        self.image_counts: dict[tuple, int] = {}
        self.decoys: list[GoldDecoy] = []
        self.col_w = (TEXT_W - COL_GAP * (style.columns - 1)) / style.columns
        # Faces and annotation marks are drawn from a stream of their own, so that adding them
        # left every other choice of a seeded book as it was.
        self.flag_rng = np.random.default_rng([seed, zlib.crc32(title.encode()), 7])

    # -- frame and pages -------------------------------------------------------------------
    @property
    def pno(self) -> int:
        assert self.page is not None
        return self.page.number + 1

    @property
    def x0(self) -> float:
        return MARGIN_L + self.col * (self.col_w + COL_GAP)

    def new_page(self, *, heads: bool = True) -> None:
        self.page = self.doc.new_page(width=PAGE_W, height=PAGE_H)
        self.col = 0
        self.col_top = MARGIN_T
        self.y = MARGIN_T
        if not heads:
            return
        n = self.pno
        head = self.title if n % 2 == 0 else self.chapter_head
        x = MARGIN_L if n % 2 == 0 else PAGE_W - MARGIN_R - text_width(head, "tiit", 8.5)
        self.page.insert_text((x, 40), head, fontname="tiit", fontsize=8.5)
        self.page.draw_line((MARGIN_L, 45), (PAGE_W - MARGIN_R, 45), width=0.4)
        if self.style.vector_decor:
            # A coloured header bar: vector decoration that is not a figure.
            bar = pymupdf.Rect(MARGIN_L, 48, PAGE_W - MARGIN_R, 53)
            self.page.draw_rect(bar, color=None, fill=(0.55, 0.25, 0.3), width=0)
            self.decoys.append(GoldDecoy("header_bar", self.pno, _box(bar)))
        num = str(n)
        w = text_width(num, BODY_FONT, 9)
        self.page.insert_text(((PAGE_W - w) / 2, PAGE_H - 40), num, fontname=BODY_FONT, fontsize=9)
        if self.pending_caption:
            spec, lines = self.pending_caption
            self.pending_caption = None
            box = self._write_caption(spec, lines, self.x0, self.y, self.col_w)
            assert spec.gold is not None
            spec.gold.caption_bbox = box
            spec.gold.caption_page = self.pno
            self.y = box[3] + 14
        self.place_queued()

    def room(self) -> float:
        return PAGE_H - MARGIN_B - self.y

    def title_page(self, title: str) -> None:
        self.new_page(heads=False)
        assert self.page is not None
        self.page.insert_text((MARGIN_L, 260), title, fontname="tibo", fontsize=26)
        self.page.insert_text(
            (MARGIN_L, 300), "Procedurally generated sample edition", fontname="tiit", fontsize=14
        )
        self.page.insert_text(
            (MARGIN_L, 340), ", ".join(content.AUTHORS), fontname="tiro", fontsize=12
        )

    def finish(self, path: Path, toc: list[list], seed: int, style: str) -> tuple[int, float]:
        """Fill in the contents page, set outline and metadata, save; (page count, page width)."""
        contents_page = self.doc[1]
        contents_page.insert_text((MARGIN_L, 110), "Contents", fontname="tibo", fontsize=18)
        y = 150.0
        for lvl, text, pno in toc:
            if lvl != 1 or y > PAGE_H - MARGIN_B:
                continue
            contents_page.insert_text((MARGIN_L, y), text, fontname="tiro", fontsize=11)
            num = str(pno)
            nw = text_width(num, "tiro", 11)
            contents_page.insert_text(
                (PAGE_W - MARGIN_R - nw, y), num, fontname="tiro", fontsize=11
            )
            y += 16
        if self.style.outline:
            self.doc.set_toc(toc)
        self.doc.set_metadata(
            {
                "title": self.title,
                "author": ", ".join(content.AUTHORS),
                "producer": "PyMuPDF (MM-Skin sample book generator)",
                "creator": "curation.samplebook",
                "creationDate": FIXED_DATE,
                "modDate": FIXED_DATE,
                "subject": f"seed={seed} style={style}",
                "keywords": "",
            }
        )
        page_count = self.doc.page_count
        path.parent.mkdir(parents=True, exist_ok=True)
        self.doc.save(path, garbage=1, deflate=True, no_new_id=True)
        return page_count, PAGE_W

    def close(self) -> None:
        self.doc.close()

    # -- text ------------------------------------------------------------------------------
    def chapter_heading(self, text: str) -> None:
        assert self.page is not None
        self.page.insert_text((MARGIN_L, self.y + 18), text, fontname=HEAD_FONT, fontsize=18)
        self.y += 18 * 1.6 + 10
        if self.style.banners:
            self._banner()
        self.col_top = self.y

    def _banner(self) -> None:
        """A decorative strip under the chapter title: a raster that is not a figure."""
        assert self.page is not None
        h = 36.0
        ramp = np.linspace(0, 1, 600, dtype=np.float32)[None, :, None]
        c0 = np.asarray((120, 60, 70), np.float32)
        c1 = np.asarray((230, 200, 190), np.float32)
        arr = np.repeat(c0 * (1 - ramp) + c1 * ramp, 48, axis=0).astype(np.uint8)
        rect = pymupdf.Rect(MARGIN_L, self.y, MARGIN_L + TEXT_W, self.y + h)
        key = ("banner",)
        if key in self.image_pool:
            self.page.insert_image(rect, xref=self.image_pool[key][0])
        else:
            xref = self.page.insert_image(rect, stream=images.png_bytes(Image.fromarray(arr)))
            self.image_pool[key] = (xref, [])
        self.decoys.append(GoldDecoy("banner", self.pno, _box(rect)))
        self.y += h + 12

    def heading(self, text: str, size: float, space_before: float) -> None:
        need = space_before + size * 1.4 + BODY_LEAD * 3
        if self.room() < need:
            self.advance()
        elif self.y > self.col_top:
            self.y += space_before
        assert self.page is not None
        self.page.insert_text((self.x0, self.y + size), text, fontname=HEAD_FONT, fontsize=size)
        self.y += size * 1.6

    def paragraph(self, text: str) -> int:
        """Place a whole paragraph (never split), returning its page number."""
        lines = wrap(text, BODY_FONT, BODY_SIZE, self.col_w)
        height = len(lines) * BODY_LEAD
        if self.room() < height:
            self.place_queued()
            if self.room() < height:
                self.advance()
                if self.room() < height:
                    self.advance()
        assert self.page is not None
        self.page.insert_text(
            (self.x0, self.y + BODY_SIZE),
            "\n".join(lines),
            fontname=BODY_FONT,
            fontsize=BODY_SIZE,
            lineheight=BODY_LEAD / BODY_SIZE,
        )
        if self.style.vector_decor and self.rng.random() < self.style.vector_decor:
            # A key-point box drawn around the paragraph: a vector frame that is not a figure.
            box = pymupdf.Rect(
                self.x0 - 4, self.y - 2, self.x0 + self.col_w + 4, self.y + height + 2
            )
            self.page.draw_rect(box, color=(0.3, 0.3, 0.5), width=0.8)
            self.decoys.append(GoldDecoy("text_box", self.pno, _box(box)))
        self.y += height + 5
        return self.pno

    # -- tables (not figures) --------------------------------------------------------------
    def table(self, number: str, dx: str) -> None:
        """A table with its caption above; drawn as vector rules or as a scanned raster."""
        st = self.style
        rows = [("Feature", dx, "Main mimic")] + [
            (f, self._pick(["present", "absent", "variable"]), self._pick(["rare", "common"]))
            for f in ("Scale", "Itch", "Symmetry", "Mucosal lesions")
        ]
        width = self.col_w * 0.95
        row_h = 14.0
        cap = f"Table {number} Distinguishing {dx.lower()} from its mimics"
        cap_lines = wrap(cap, st.cap_font, st.cap_size, width)
        total = len(cap_lines) * st.cap_lead + 4 + row_h * len(rows) + 14
        if self.room() < total:
            self.advance()
        assert self.page is not None
        x0, y0 = self.x0, self.y
        self.page.insert_text(
            (x0, y0 + st.cap_size),
            "\n".join(cap_lines),
            fontname=st.cap_label_font,
            fontsize=st.cap_size,
            lineheight=st.cap_lead / st.cap_size,
        )
        top = y0 + len(cap_lines) * st.cap_lead + 4
        rect = pymupdf.Rect(x0, top, x0 + width, top + row_h * len(rows))
        if self.rng.random() < 0.5:
            cw = width / 3
            for r, row in enumerate(rows):
                y = top + r * row_h
                self.page.draw_line((x0, y), (x0 + width, y), width=0.5)
                for c, cell in enumerate(row):
                    font = "hebo" if r == 0 else "helv"
                    self.page.insert_text(
                        (x0 + c * cw + 3, y + 10), cell, fontname=font, fontsize=8
                    )
            self.page.draw_line((x0, rect.y1), (x0 + width, rect.y1), width=0.5)
            kind = "table"
        else:
            px_w, px_h = int(width * 2), int(rect.height * 2)
            img = Image.new("RGB", (px_w, px_h), (255, 255, 255))
            draw = ImageDraw.Draw(img)
            font = ImageFont.load_default(size=15)
            for r, row in enumerate(rows):
                y = int(r * row_h * 2)
                draw.line((0, y, px_w, y), fill=(0, 0, 0), width=1)
                for c, cell in enumerate(row):
                    draw.text((c * px_w // 3 + 6, y + 6), cell, fill=(0, 0, 0), font=font)
            self.page.insert_image(rect, stream=images.png_bytes(img.convert("L")))
            kind = "raster_table"
        self.decoys.append(GoldDecoy(kind, self.pno, _box(rect), cap))
        self.y = rect.y1 + 14

    # -- figures ---------------------------------------------------------------------------
    def _insert(self, key: tuple, rect: pymupdf.Rect, make, quantize: bool = True) -> list:
        """Insert a pooled image: drawn on first use, then reused by xref. Quantizing keeps
        the PDF small; `quantize=False` keeps pure colours (marker strokes) pure."""
        assert self.page is not None
        n = self.image_counts.get(key, 0)
        self.image_counts[key] = n + 1
        pool_key = (*key, n % self.unique_images)
        if pool_key in self.image_pool:
            xref, extra = self.image_pool[pool_key]
            self.page.insert_image(rect, xref=xref)
            return extra
        img, extra = make()
        if quantize:
            img = img.quantize(96, method=Image.Quantize.FASTOCTREE)
        xref = self.page.insert_image(rect, stream=images.png_bytes(img))
        self.image_pool[pool_key] = (xref, extra)
        return extra

    def _flagged_image(self, modality: str, rect: pymupdf.Rect) -> tuple[list[str], str]:
        """A single picture that may be a face (clinical photographs only) or carry arrows and
        circles, burned into its pixels or drawn over it as vector paths. Returns the panel's
        gold flags and how marks were made ("vector" | "raster" | "")."""
        assert self.page is not None
        r = float(self.flag_rng.random())
        px_w = 600 if rect.width > 200 else (480 if rect.width > 160 else 400)
        if modality == "clinical" and r < FACE_SHARE:
            self._insert(
                ("face",), rect, lambda: (images.face(self.flag_rng, px_w, px_w * 3 // 4), [])
            )
            return ["face"], ""
        r -= FACE_SHARE
        if r < RASTER_MARK_SHARE:

            def make():
                img = images.draw(modality, self.flag_rng, px_w, px_w * 3 // 4)
                return images.burn_marks(img, self.flag_rng), []

            self._insert((modality, "marks"), rect, make, quantize=False)
            return ["annotation_marks"], "raster"
        self._single_image(modality, rect)
        if r - RASTER_MARK_SHARE < VECTOR_MARK_SHARE:
            self._vector_marks(rect)
            return ["annotation_marks"], "vector"
        return [], ""

    def _vector_marks(self, rect: pymupdf.Rect) -> None:
        """An arrow and/or a circle drawn as paths over a placed picture."""
        assert self.page is not None
        rng = self.flag_rng
        colour = VECTOR_MARK_COLOURS[int(rng.integers(len(VECTOR_MARK_COLOURS)))]
        w, h = rect.width, rect.height
        cx = rect.x0 + w * float(rng.uniform(0.35, 0.65))
        cy = rect.y0 + h * float(rng.uniform(0.4, 0.65))
        kind = int(rng.integers(3))  # 0 arrow, 1 circle, 2 both
        shape = self.page.new_shape()
        if kind in (1, 2):
            shape.draw_circle(pymupdf.Point(cx, cy), min(w, h) * float(rng.uniform(0.12, 0.2)))
        if kind in (0, 2):
            tail = pymupdf.Point(cx + w * 0.25, cy - h * 0.25)
            tip = pymupdf.Point(cx + w * 0.03, cy - h * 0.03)
            shape.draw_line(tail, tip)
            ang = float(np.arctan2(tip.y - tail.y, tip.x - tail.x))
            size = w * 0.05
            for da in (2.6, -2.6):
                end = pymupdf.Point(
                    tip.x + size * np.cos(ang + da), tip.y + size * np.sin(ang + da)
                )
                shape.draw_line(tip, end)
        shape.finish(color=colour, width=1.6, closePath=False)
        shape.commit()

    def _single_image(self, modality: str, rect: pymupdf.Rect) -> None:
        # Narrow panels get smaller pictures, as a publisher would downsample them.
        px_w = 600 if rect.width > 200 else (480 if rect.width > 160 else 400)
        if self.style.tiles and self.rng.random() < self.style.tiles:
            self._tiled_image(modality, rect, px_w)
            return
        self._insert(
            (modality,), rect, lambda: (images.draw(modality, self.rng, px_w, px_w * 3 // 4), [])
        )

    def _tiled_image(self, modality: str, rect: pymupdf.Rect, px_w: int) -> None:
        """One picture written as three strips, as some scanners and PDF writers store them."""
        assert self.page is not None
        img = images.draw(modality, self.rng, px_w, px_w * 3 // 4)
        px_h = img.height
        cuts = [0, px_h // 3, 2 * px_h // 3, px_h]
        for a, b in itertools.pairwise(cuts):
            strip = img.crop((0, a, img.width, b))
            r = pymupdf.Rect(
                rect.x0, rect.y0 + rect.height * a / px_h, rect.x1, rect.y0 + rect.height * b / px_h
            )
            stream = images.png_bytes(strip.quantize(96, method=Image.Quantize.FASTOCTREE))
            self.page.insert_image(r, stream=stream, keep_proportion=False)

    def _composite(self, spec: FigureSpec, rect: pymupdf.Rect) -> list[pymupdf.Rect]:
        """One raster holding several panels separated by white gutters, letters in pixels."""
        self._insert(
            ("composite", *spec.modalities),
            rect,
            lambda: (draw_composite(spec.modalities, self.rng), []),
        )
        _, _, fracs = composite_layout(len(spec.modalities))
        w, h = rect.width, rect.height
        return [
            pymupdf.Rect(rect.x0 + a * w, rect.y0 + b * h, rect.x0 + c * w, rect.y0 + d * h)
            for a, b, c, d in fracs
        ]

    def _vector_diagram(self, spec: FigureSpec, rect: pymupdf.Rect) -> pymupdf.Rect:
        """A schematic drawn with rectangles, curves, lines and fills, short labels inside;
        returns the drawing's union box, which is `rect`."""
        assert self.page is not None
        shape = self.page.new_shape()
        x0, y0, x1, y1 = rect
        w, h = rect.width, rect.height
        labels: list[tuple[float, float, str]] = []
        if spec.diagram == "layers":
            # Epidermis (with a wavy junction), dermis with vessels, subcutis with fat lobules.
            epi = y0 + h * 0.22
            der = y0 + h * 0.68
            shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
            shape.finish(color=(0.2, 0.2, 0.2), fill=(0.98, 0.93, 0.88), width=0.8)
            shape.draw_rect(pymupdf.Rect(x0, der, x1, y1))
            shape.finish(color=None, fill=(1.0, 0.95, 0.7), width=0)
            n = 5
            step = w / n
            for i in range(n):
                a = pymupdf.Point(x0 + i * step, epi)
                b = pymupdf.Point(x0 + (i + 1) * step, epi)
                c1 = pymupdf.Point(a.x + step / 3, epi + h * 0.08)
                c2 = pymupdf.Point(a.x + 2 * step / 3, epi + h * 0.08)
                shape.draw_bezier(a, c1, c2, b)
            shape.finish(color=(0.5, 0.2, 0.2), width=1.2, closePath=False)
            for i in range(4):
                cx = x0 + w * (0.12 + 0.2 * i)
                shape.draw_circle(pymupdf.Point(cx, der + (y1 - der) * 0.5), (y1 - der) * 0.28)
            shape.finish(color=(0.7, 0.6, 0.2), fill=(1.0, 0.9, 0.5), width=0.6)
            for i in range(3):
                vx = x0 + w * (0.2 + 0.25 * i)
                shape.draw_line(pymupdf.Point(vx, epi + h * 0.15), pymupdf.Point(vx + 12, der))
            shape.finish(color=(0.7, 0.1, 0.1), width=1.5)
            shape.draw_line(pymupdf.Point(x0, der), pymupdf.Point(x1, der))
            shape.finish(color=(0.4, 0.4, 0.4), width=0.5, dashes="[3 2] 0")
            ys = (y0 + h * 0.08, (epi + der) / 2, der + (y1 - der) * 0.15)
            labels = [(x1 - 52, y + 7, t) for y, t in zip(ys, content.LAYER_LABELS, strict=True)]
        else:
            # A body outline, front view, with dots at the predilection sites.
            shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
            shape.finish(color=(0.5, 0.5, 0.5), fill=(0.95, 0.96, 0.98), width=0.5)
            cx = x0 + w * 0.4
            head = h * 0.09
            shape.draw_circle(pymupdf.Point(cx, y0 + h * 0.06 + head), head)
            top = y0 + h * 0.06 + 2 * head
            torso = pymupdf.Rect(cx - w * 0.09, top + 2, cx + w * 0.09, top + h * 0.42)
            shape.draw_rect(torso)
            shape.finish(color=(0.2, 0.2, 0.3), fill=(0.9, 0.85, 0.8), width=0.9)
            for side in (-1, 1):
                sx = cx + side * w * 0.09
                shape.draw_line(
                    pymupdf.Point(sx, top + 6), pymupdf.Point(sx + side * w * 0.12, top + h * 0.38)
                )
                lx = cx + side * w * 0.05
                shape.draw_line(
                    pymupdf.Point(lx, torso.y1), pymupdf.Point(lx + side * w * 0.03, y1 - h * 0.05)
                )
            shape.finish(color=(0.2, 0.2, 0.3), width=2.5)
            for fx, fy in ((0.38, 0.35), (0.44, 0.5), (0.33, 0.62), (0.28, 0.45), (0.47, 0.82)):
                shape.draw_circle(pymupdf.Point(x0 + w * fx, y0 + h * fy), 2.8)
            shape.finish(color=None, fill=(0.8, 0.1, 0.15), width=0)
            labels = [
                (x1 - 62, y0 + 16, "Anterior"),
                (x1 - 62, y0 + h * 0.5, "L"),
                (x0 + 8, y0 + h * 0.5, "R"),
            ]
        shape.commit()
        for lx, ly, text in labels:
            self.page.insert_text(
                (lx, ly), text, fontname="helv", fontsize=7, color=(0.1, 0.1, 0.1)
            )
        return pymupdf.Rect(rect)

    def figure_geometry(self, spec: FigureSpec, width: float) -> tuple[float, float]:
        """Width and height of the image block of a figure in a frame `width` wide."""
        n = len(spec.modalities)
        if spec.kind == "vector":
            w = width * (0.6 if self.style.columns == 1 else 0.95)
            return w, w * 0.62
        if spec.kind == "single":
            w = width * (0.62 if self.style.columns == 1 else 0.95)
            if spec.position == "beside":
                w = width * 0.56
            return w, w * 0.75
        gut = self.style.gutter
        if spec.kind.startswith("row"):
            pw = (width - gut * (n - 1)) / n
            return width, pw * 0.75 + self._below()
        if spec.kind == "grid4":
            w = width * (0.8 if self.style.columns == 1 else 1.0)
            pw = (w - gut) / 2
            return w, (pw * 0.75 + self._below()) * 2 + gut
        cols, rows = (2, 2) if n == 4 else (n, 1)
        w = width * (0.9 if n != 4 else 0.75)
        if self.style.columns == 2:
            w = width
        return w, w * (rows * 240 + (rows - 1) * 12) / (cols * 320 + (cols - 1) * 12)

    def _below(self) -> float:
        return 13.0 if self.style.letters_below else 0.0

    def _caption_lines(self, spec: FigureSpec, width: float) -> list[str]:
        st = self.style
        label_txt = f"{st.label_word} {spec.label}"
        indent = text_width(label_txt + " ", st.cap_label_font, st.cap_size)
        rest = spec.caption[len(label_txt) :].strip()
        return wrap(rest, st.cap_font, st.cap_size, width, first_indent=indent)

    def _write_caption(
        self, spec: FigureSpec, lines: list[str], x: float, y: float, width: float
    ) -> Box:
        assert self.page is not None
        st = self.style
        label_txt = f"{st.label_word} {spec.label}"
        indent = text_width(label_txt + " ", st.cap_label_font, st.cap_size)
        base = y + st.cap_size
        self.page.insert_text(
            (x, base), label_txt, fontname=st.cap_label_font, fontsize=st.cap_size
        )
        self.page.insert_text(
            (x + indent, base), lines[0], fontname=st.cap_font, fontsize=st.cap_size
        )
        if len(lines) > 1:
            self.page.insert_text(
                (x, base + st.cap_lead),
                "\n".join(lines[1:]),
                fontname=st.cap_font,
                fontsize=st.cap_size,
                lineheight=st.cap_lead / st.cap_size,
            )
        widths = [text_width(ln, st.cap_font, st.cap_size) for ln in lines]
        widths[0] += indent
        return (
            round(x, 2),
            round(y, 2),
            round(x + max(widths), 2),
            round(y + len(lines) * st.cap_lead, 2),
        )

    def _figure_total(self, spec: FigureSpec) -> tuple[float, float, float, list[str]]:
        img_w, img_h = self.figure_geometry(spec, self.col_w)
        cap_w = self.col_w
        if spec.position == "beside":
            cap_w = self.col_w - img_w - 10
        lines = self._caption_lines(spec, cap_w)
        cap_h = len(lines) * self.style.cap_lead
        if spec.position == "beside":
            total = max(img_h, cap_h) + 18
        elif spec.position == "next_page":
            total = img_h + 18
        else:
            total = img_h + 6 + cap_h + 18
        return img_w, img_h, total, lines

    def place_pair(self, a: FigureSpec, b: FigureSpec) -> bool:
        """Two single figures side by side, each with its own caption underneath."""
        assert self.page is not None
        half = (self.col_w - 18) / 2
        img_w, img_h = half, half * 0.75
        lines = [self._caption_lines(s, half) for s in (a, b)]
        total = img_h + 6 + max(len(x) for x in lines) * self.style.cap_lead + 18
        if self.room() < total:
            return False
        top = self.y + 4
        for k, spec in enumerate((a, b)):
            left = self.x0 + k * (half + 18)
            rect = pymupdf.Rect(left, top, left + img_w, top + img_h)
            pflags, marks = self._flagged_image(spec.modalities[0], rect)
            cap_box = self._write_caption(spec, lines[k], left, top + img_h + 6, half)
            spec.gold = GoldFigure(
                label=spec.label,
                page=self.pno,
                bbox=_box(rect),
                caption=spec.caption,
                caption_bbox=cap_box,
                caption_page=self.pno,
                panels=[
                    GoldPanel(None, _box(rect), spec.subcaptions[0], spec.modalities[0], pflags)
                ],
                modality=spec.modalities[0],
                age=spec.age,
                sex=spec.sex,
                diagnosis=spec.diagnosis,
                section=spec.section,
                style="side_by_side",
                caption_position="below",
                layout="1col",
                flags=list(pflags),
                marks=marks,
            )
        self.y = top + total
        return True

    def place_figure(self, spec: FigureSpec) -> None:
        assert self.page is not None
        img_w, img_h, total, lines = self._figure_total(spec)
        n = len(spec.modalities)
        pos = spec.position
        x0 = self.x0
        top = self.y + 4
        cap_top = top + img_h + 6
        if pos == "above":
            cap_top = top
            top = top + len(lines) * self.style.cap_lead + 6
        elif pos == "next_page":
            top = PAGE_H - MARGIN_B - img_h  # image sinks to the page foot
        left = x0 if pos == "beside" else x0 + (self.col_w - img_w) / 2
        frame = pymupdf.Rect(left, top, left + img_w, top + img_h)
        panel_flags: list[list[str]] = [[] for _ in spec.modalities]
        mark_kinds: set[str] = set()
        if spec.kind.startswith("composite"):
            rects = self._composite(spec, frame)
        elif spec.kind == "vector":
            rects = [self._vector_diagram(spec, frame)]
        else:
            if spec.kind == "single":
                rects = [frame]
            else:
                cells = grid_cells(spec, left, top, img_w, self.style.gutter, self._below())
                rects = [pymupdf.Rect(x, y, x + w, y + h) for x, y, w, h in cells]
            for i, (rect, modality) in enumerate(zip(rects, spec.modalities, strict=True)):
                panel_flags[i], how = self._flagged_image(modality, rect)
                if how:
                    mark_kinds.add(how)
                if n > 1:
                    letter = LETTERS[i].upper() if spec.upper else LETTERS[i]
                    if self.style.letters_below:
                        lw = text_width(letter, "hebo", 10)
                        pos_l = ((rect.x0 + rect.x1 - lw) / 2, rect.y1 + 10)
                        self.page.insert_text(pos_l, letter, fontname="hebo", fontsize=10)
                        continue
                    ink = (0, 0, 0) if modality == "pathological" else (1, 1, 1)
                    self.page.insert_text(
                        (rect.x0 + 5, rect.y0 + 14),
                        letter,
                        fontname="hebo",
                        fontsize=12,
                        color=ink,
                    )
        panels = [
            GoldPanel(
                LETTERS[i] if n > 1 else None, _box(r), spec.subcaptions[i], m, panel_flags[i]
            )
            for i, (r, m) in enumerate(zip(rects, spec.modalities, strict=True))
        ]
        cap_box: Box = (0.0, 0.0, 0.0, 0.0)
        if pos == "beside":
            cap_box = self._write_caption(
                spec, lines, left + img_w + 10, top, self.col_w - img_w - 10
            )
        elif pos != "next_page":
            cap_box = self._write_caption(spec, lines, x0, cap_top, self.col_w)
        union = pymupdf.Rect(rects[0])
        for r in rects[1:]:
            union = union | r
        modalities = set(spec.modalities)
        spec.gold = GoldFigure(
            label=spec.label,
            page=self.pno,
            bbox=_box(union),
            caption=spec.caption,
            caption_bbox=cap_box,
            caption_page=self.pno,
            panels=panels,
            modality=spec.modalities[0] if len(modalities) == 1 else "mixed",
            age=spec.age,
            sex=spec.sex,
            diagnosis=spec.diagnosis,
            section=spec.section,
            style=spec.kind,
            caption_position=pos,
            layout=f"{self.style.columns}col",
            flags=sorted({f for pf in panel_flags for f in pf}),
            marks="+".join(sorted(mark_kinds)),
        )
        if pos == "next_page":
            self.pending_caption = (spec, self._caption_lines(spec, self.col_w))
            self.new_page()
        else:
            self.y = max(self.y, top - 4) + total if pos != "above" else cap_top + total


def _demographics(rng: np.random.Generator) -> tuple[str, int | None, str | None]:
    """A caption phrase and the age/sex it encodes (sometimes none, sometimes partial); the
    sex in the extractor's values (``FEMALE``/``MALE``), however the caption spells it."""
    roll = rng.random()
    letter = "F" if rng.random() < 0.5 else "M"
    sex = {"F": FEMALE, "M": MALE}[letter]
    if roll < 0.45:
        age = int(rng.integers(19, 88))
        noun = {"F": "woman", "M": "man"}[letter]
        art = "an" if str(age).startswith("8") or age in (11, 18) else "a"
        return f"in {art} {age}-year-old {noun}", age, sex
    if roll < 0.6:
        age = int(rng.integers(2, 17))
        noun = {"F": "girl", "M": "boy"}[letter]
        art = "an" if age in (8, 11) else "a"
        return f"in {art} {age}-year-old {noun}", age, sex
    if roll < 0.75:
        age = int(rng.integers(20, 90))
        return f"({letter}, {age})", age, sex
    if roll < 0.83:
        noun = {"F": "woman", "M": "man"}[letter]
        return f"in an elderly {noun}", None, sex
    return "", None, None


def _pick(rng: np.random.Generator, seq: list[str]) -> str:
    return seq[int(rng.integers(len(seq)))]


PANEL_SETS = {
    2: [["clinical", "dermoscopic"], ["clinical", "pathological"], ["clinical", "clinical"]],
    3: [["clinical", "dermoscopic", "pathological"], ["clinical", "clinical", "dermoscopic"]],
    4: [
        ["clinical", "clinical", "dermoscopic", "pathological"],
        ["clinical", "dermoscopic", "clinical", "dermoscopic"],
        ["pathological", "pathological", "pathological", "pathological"],
    ],
}


def _make_spec(
    rng: np.random.Generator,
    style: BookStyle,
    label: str,
    dx: str,
    site: str,
    section: list[str],
) -> FigureSpec:
    if style.vectors and rng.random() < style.vectors:
        return _vector_spec(rng, style, label, dx, section)
    kind = _weighted(rng, style.kinds)
    n = 1 if kind == "single" else int(kind[-1])
    if n == 1:
        modalities = [_pick(rng, ["clinical", "clinical", "dermoscopic", "pathological"])]
    else:
        sets = PANEL_SETS[n]
        modalities = list(sets[int(rng.integers(len(sets)))])
    position = _weighted(rng, style.positions)
    if position == "beside" and (kind != "single" or style.columns > 1):
        position = "below"
    demo, age, sex = _demographics(rng)
    demo_sp = f" {demo}" if demo else ""
    subs: list[str] = []
    upper = n > 1 and rng.random() < style.upper_letters
    for m in modalities:
        finding = _pick(rng, content.FINDINGS[m])
        if n > 1 and rng.random() < style.silent_modality:
            # Real sub-captions often leave the modality to the picture.
            lead = {
                "clinical": "Close-up of",
                "dermoscopic": "Detail of the surface with",
                "pathological": "Higher power view of",
            }[m]
            subs.append(f"{lead} {finding}.")
        elif m == "clinical":
            subs.append(f"Clinical photograph of {finding} on the {site}.")
        elif m == "dermoscopic":
            subs.append(f"Dermoscopy showing {finding}.")
        else:
            stain = _pick(rng, content.PATH_STAINS)
            subs.append(f"Biopsy specimen ({stain}) showing {finding}.")
    head = f"{style.label_word} {label}"
    if n == 1:
        m = modalities[0]
        finding = subs[0].split(" of ", 1)[-1].split(" showing ", 1)[-1]
        if m == "clinical":
            caption = f"{head} {dx}{demo_sp}: {finding}"
        elif m == "dermoscopic":
            caption = f"{head} Dermoscopy of {dx.lower()}{demo_sp}, showing {finding}"
        else:
            stain = subs[0].split("(", 1)[1].split(")", 1)[0]
            caption = f"{head} Histopathology of {dx.lower()} ({stain}): {finding}"
            age = sex = None
        subs = [caption[len(head) :].strip()]
    else:
        parts = []
        i = 0
        while i < n:
            if (
                i + 1 < n
                and modalities[i] == modalities[i + 1] == "clinical"
                and rng.random() < style.shared_letters
            ):
                finding = _pick(rng, content.FINDINGS["clinical"])
                text = f"Clinical photographs of {finding} on the {site}."
                la, lb = LETTERS[i], LETTERS[i + 1]
                if upper:
                    la, lb = la.upper(), lb.upper()
                parts.append(f"({la}, {lb}) {text}")
                subs[i] = subs[i + 1] = text
                i += 2
            else:
                parts.append(f"({LETTERS[i].upper() if upper else LETTERS[i]}) {subs[i]}")
                i += 1
        caption = f"{head} {dx}{demo_sp}. {' '.join(parts)}"
    return FigureSpec(
        label, modalities, caption, subs, age, sex, dx, section, kind, position, upper
    )


def _vector_spec(
    rng: np.random.Generator, style: BookStyle, label: str, dx: str, section: list[str]
) -> FigureSpec:
    """A captioned vector diagram: one panel, modality "other", no patient details. Captions
    below or above only (the link pass joins raster figures split by a page break)."""
    diagram = _pick(rng, ["layers", "body"])
    body = _pick(rng, content.VECTOR_CAPTIONS[diagram]).format(dx_l=dx.lower())
    head = f"{style.label_word} {label}"
    position = _weighted(rng, style.positions)
    if position not in ("below", "above"):
        position = "below"
    spec = FigureSpec(
        label, ["other"], f"{head} {body}", [body], None, None, dx, section, "vector", position
    )
    spec.diagram = diagram
    return spec


def _ref_text(spec: FigureSpec, style: BookStyle, rng: np.random.Generator, cap: bool) -> str:
    n = len(spec.modalities)
    word = "Figure" if cap or rng.random() < 0.3 else "Fig."
    if n > 1 and rng.random() < 0.4:
        letters = ", ".join(LETTERS[:2]) if rng.random() < 0.5 else "a"
        return f"{word} {spec.label}{letters}"
    return f"{word} {spec.label}"


def _multi_ref(specs: list[FigureSpec], rng: np.random.Generator) -> str:
    first, last = specs[0].label, specs[-1].label
    if len(specs) == 2:
        return f"Figs. {first} and {last}"
    joiner = "\u2013" if rng.random() < 0.6 else " to "
    return f"Figs. {first}{joiner}{last}"


def _sentence(rng: np.random.Generator, dx: str, site: str) -> str:
    return _pick(rng, content.SENTENCES).format(dx=dx, site=site)


def generate_book(
    path: str | Path,
    *,
    chapters: int = 4,
    pages_per_chapter: int = 6,
    seed: int = 0,
    title: str = "Sample Atlas of Dermatology",
    style: str = "classic",
    unique_images: int = 48,
    producer: str = "pymupdf",
) -> GoldBook:
    """Write a sample atlas PDF to `path` and return where every figure and citation went.

    `style` names one of `STYLES`, or is "random" for a style drawn from the seed (see
    `random_style`). `unique_images` caps how many distinct pictures are drawn
    per modality; later figures reuse them, which keeps a 500-page book fast and small.
    `producer` is one of `PRODUCERS`: "pymupdf" draws the pages with PyMuPDF (Base-14 fonts,
    reproducible bytes); "chromium" sets the same content as HTML in its own typography and
    prints it with headless Chromium (see `chromium.py`).
    """
    if producer not in PRODUCERS:
        raise ValueError(f"unknown producer {producer!r}; choose from {', '.join(PRODUCERS)}")
    st = random_style(seed) if style == "random" else STYLES[style]
    rng = np.random.default_rng(seed)
    if producer == "chromium":
        from .chromium import HtmlWriter

        writer: _Writer | HtmlWriter = HtmlWriter(title, st, rng, unique_images, seed=seed)
    else:
        writer = _Writer(title, st, rng, unique_images, seed=seed)
    try:
        specs, toc = compose(writer, st, rng, title, chapters, pages_per_chapter)
        page_count, page_w = writer.finish(Path(path), toc, seed, style)
    finally:
        writer.close()
    figures = []
    for spec in specs:
        if spec.gold is None:
            continue
        spec.gold.mentions = list(spec.mentions)
        figures.append(spec.gold)
    figures.sort(key=lambda f: (f.page, f.bbox[0] > page_w / 2 and st.columns > 1, f.bbox[1]))
    return GoldBook(
        str(path), title, page_count, seed, figures, style, writer.decoys, producer=producer
    )


PRODUCERS = ("pymupdf", "chromium")


def compose(
    w, st: BookStyle, rng: np.random.Generator, title: str, chapters: int, pages_per_chapter: int
) -> tuple[list[FigureSpec], list[list]]:
    """Write the book's content through a producer's writer: title and contents pages, then
    chapters of sections whose paragraphs cite figures that the writer places where they fit.

    The writer (`_Writer` here, `chromium.HtmlWriter`) owns pages, columns and the cursor; every
    random draw about the content happens here, so both producers tell the same kind of story.
    Returns the figure specs (placed ones carry `gold`) and the outline entries.
    """
    # Title page and a contents page that is filled in once page numbers are known.
    w.title_page(title)
    w.new_page(heads=False)
    toc: list[list] = []
    specs: list[FigureSpec] = []
    for ci in range(chapters):
        ch_title, sections = content.CHAPTERS[ci % len(content.CHAPTERS)]
        cycle = ci // len(content.CHAPTERS)
        if cycle:
            ch_title = f"{ch_title} {['', 'II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII'][cycle % 8]}"
        chno = ci + 1
        chapter_label = f"Chapter {chno} {ch_title}"
        while w.queue or w.pending_caption:
            w.place_queued()
            if w.queue or w.pending_caption:
                w.advance()
        w.chapter_head = f"{chno}  {ch_title}"
        w.new_page()
        start = w.pno
        toc.append([1, chapter_label, start])
        w.chapter_heading(chapter_label)
        fig_no = 0
        table_no = 0
        si = 0
        while True:
            sec_title, dx, sites = sections[si % len(sections)]
            si += 1
            sec_label = f"{chno}.{si} {sec_title}"
            w.heading(sec_label, 12, 10)
            toc.append([2, sec_label, w.pno])
            section = [chapter_label, sec_label]
            n_figs = int(rng.integers(1, 3))
            sec_specs = []
            for _ in range(n_figs):
                fig_no += 1
                site = _pick(rng, sites)
                label = f"{chno}{st.label_sep}{fig_no}"
                sec_specs.append(_make_spec(rng, st, label, dx, site, section))
            specs.extend(sec_specs)
            site = sites[0]
            pending = list(sec_specs)
            n_par = int(rng.integers(2, 4)) + len(sec_specs)
            for pi in range(n_par):
                sents = [_sentence(rng, dx, site) for _ in range(int(rng.integers(3, 6)))]
                cited: list[FigureSpec] = []
                if pending and (pi > 0 or rng.random() < 0.5):
                    if len(pending) >= 2 and rng.random() < st.multi_refs:
                        cited = list(pending)
                        pending.clear()
                    else:
                        cited.append(pending.pop(0))
                elif sec_specs and rng.random() < 0.25:
                    cited.append(sec_specs[int(rng.integers(len(sec_specs)))])
                if len(cited) > 1:
                    tmpl = _pick(rng, content.MENTION_TEMPLATES)
                    ref = _multi_ref(cited, rng)
                    pos = int(rng.integers(1, len(sents) + 1))
                    sents.insert(pos, tmpl.format(ref=ref, Ref=ref))
                for spec in cited if len(cited) == 1 else []:
                    if rng.random() < st.ref_first:
                        ref = _ref_text(spec, st, rng, True)
                        sents.insert(0, f"{ref} shows the typical appearance of {dx.lower()}.")
                        continue
                    tmpl = _pick(rng, content.MENTION_TEMPLATES)
                    ref = _ref_text(spec, st, rng, tmpl.startswith("{Ref}"))
                    pos = int(rng.integers(1, len(sents) + 1))
                    sents.insert(pos, tmpl.format(ref=ref, Ref=ref))
                text = " ".join(sents)
                page_no = w.paragraph(text)
                for spec in cited:
                    spec.mentions.append(GoldMention(page_no, text))
                    if spec not in w.queue and spec.gold is None:
                        w.queue.append(spec)
                w.place_queued()
            for spec in pending:
                if spec not in w.queue and spec.gold is None:
                    w.queue.append(spec)
            if st.tables and rng.random() < st.tables:
                table_no += 1
                w.table(f"{chno}{st.label_sep}{table_no}", dx)
            if w.pno - start + 1 >= pages_per_chapter:
                break
    while w.queue or w.pending_caption:
        w.place_queued()
        if w.queue or w.pending_caption:
            w.advance()
    return specs, toc


def chapters_for_pages(pages: int, pages_per_chapter: int = 6) -> int:
    """How many chapters make a book of about `pages` pages."""
    # A chapter runs on to the page where its last section and queued figures end: measured
    # on the classic style, about a third of a page beyond `pages_per_chapter`.
    return max(1, math.ceil((pages - 2) / (pages_per_chapter + 0.35)))
