"""Second PDF producer: the sample book set as HTML and printed to PDF by headless Chromium.

Extractors overfit to one producer's internals (PyMuPDF's Base-14 text, one image object per
placement, its block order), so the same content is also typeset by a browser: real embedded
TrueType fonts (DejaVu), the browser's own line breaking (justified text, breaks after hard
hyphens, discretionary soft hyphens), JPEG photographs, vector tables drawn by Skia, mirrored
margins, running heads or feet, and its own outline. Each book style gets a `Look` that differs
from the PyMuPDF books in page size, margins, fonts, spacing and caption typography.

How it works: `HtmlWriter` has the PyMuPDF writer's interface, so `book.compose` drives both
with the same content draws. Pages are fixed-size boxes (CSS ``@page`` plus one ``.page``
element per sheet) holding absolutely positioned blocks; the Python flow engine decides where
each block goes, asking the browser how tall a paragraph or caption is at a given width. After
layout the finished document is measured in the browser (``getBoundingClientRect`` of every
image, and of the text range of every caption) and printed with Playwright's ``page.pdf()`` on
the system Chromium. Gold boxes are those measurements, converted from CSS px to PDF points
(x 0.75 at 96 dpi) relative to their page box, whose top is checked to be page index x page
height. Images are placed on whole CSS pixels because Chromium snaps image paint to pixels; the
benchmark test checks that gold image boxes equal PyMuPDF's `get_image_info` boxes.

Needs the `playwright` package and a Chromium binary (``/usr/bin/chromium`` unless
``SAMPLEBOOK_CHROMIUM`` names another); nothing is downloaded. No Django import.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFont

from . import content, images
from .book import (
    LETTERS,
    BookStyle,
    Box,
    FigureSpec,
    FlowWriter,
    GoldDecoy,
    GoldFigure,
    GoldPanel,
    composite_layout,
    draw_composite,
    grid_cells,
)

PX = 0.75  # PDF points per CSS px (96 px per inch, 72 points per inch)
CHROMIUM = os.environ.get("SAMPLEBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass(frozen=True)
class Look:
    """Typography and page design of a Chromium-set book (all lengths in points)."""

    name: str
    page_w: float = 504.0  # 7 x 10 in; whole inches keep the page a whole number of CSS px
    page_h: float = 720.0
    top: float = 58.0
    bottom: float = 56.0
    inner: float = 58.0  # mirrored margins: inner on the binding side
    outer: float = 46.0
    col_gap: float = 16.0
    body_font: str = "DejaVu Serif"
    body_size: float = 9.5
    body_lead: float = 13.2
    justify: bool = True
    para_gap: float = 4.0
    indent: float = 0.0
    soft_hyphens: bool = False  # discretionary hyphens (&shy;) in long words of body text
    head_font: str = "DejaVu Sans"
    chapter_size: float = 17.0
    section_size: float = 11.0
    cap_font: str = "DejaVu Sans Condensed"
    cap_italic: bool = False
    cap_size: float = 8.0
    cap_lead: float = 10.4
    label_font: str = "DejaVu Sans Condensed"
    label_italic: bool = False
    label_color: str = "#000"
    heads: str = "top"  # running head with folio above the text, or "bottom" (running foot)
    head_size: float = 7.5
    cap_gap: float = 6.0  # between image and caption
    fig_space: float = 14.0  # after a figure block

    @property
    def text_w(self) -> float:
        return self.page_w - self.inner - self.outer


LOOKS: dict[str, Look] = {
    "classic": Look("classic"),
    "varied": Look(
        "varied",
        page_w=612.0,  # US Letter
        page_h=792.0,
        top=64.0,
        bottom=62.0,
        inner=74.0,
        outer=58.0,
        body_font="DejaVu Sans",
        body_size=9.0,
        body_lead=12.8,
        justify=False,
        para_gap=6.0,
        head_font="DejaVu Serif",
        chapter_size=20.0,
        section_size=12.0,
        cap_font="DejaVu Serif",
        cap_italic=True,
        cap_size=8.5,
        cap_lead=11.2,
        label_font="DejaVu Serif",
        label_italic=True,
        label_color="#1d3f6e",
        heads="bottom",
        cap_gap=5.0,
    ),
    "hard": Look(
        "hard",
        page_w=540.0,  # 7.5 x 9.25 in
        page_h=666.0,
        top=54.0,
        bottom=50.0,
        inner=60.0,
        outer=42.0,
        body_font="DejaVu Serif Condensed",
        body_size=9.5,
        body_lead=12.6,
        para_gap=0.0,
        indent=12.0,
        soft_hyphens=True,
        cap_font="DejaVu Sans",
        cap_size=7.5,
        cap_lead=9.6,
        label_font="DejaVu Sans",
        label_color="#8b1a1a",
        cap_gap=4.0,
        fig_space=12.0,
    ),
    "twocol": Look(
        "twocol",
        page_w=612.0,
        page_h=792.0,
        top=60.0,
        bottom=58.0,
        inner=54.0,
        outer=48.0,
        col_gap=15.0,
        body_font="DejaVu Serif",
        body_size=8.5,
        body_lead=11.4,
        para_gap=3.0,
        soft_hyphens=True,
        chapter_size=18.0,
        section_size=10.0,
        cap_size=7.5,
        cap_lead=9.4,
        cap_gap=5.0,
    ),
}


def random_look(seed: int, name: str) -> Look:
    """A look with every typographic knob drawn from the seed, for `random` styles."""
    r = np.random.default_rng(seed + 104729)

    def pick(seq):
        return seq[int(r.integers(len(seq)))]

    page_w, page_h = pick([(504.0, 720.0), (540.0, 666.0), (612.0, 792.0), (576.0, 792.0)])
    fonts = ["DejaVu Serif", "DejaVu Sans", "DejaVu Serif Condensed", "DejaVu Sans Condensed"]
    body = float(pick([8.5, 9.0, 9.5, 10.0]))
    cap = float(pick([7.0, 7.5, 8.0, 8.5]))
    cap_font = pick(fonts)
    return Look(
        name,
        page_w=page_w,
        page_h=page_h,
        top=float(r.uniform(54, 70)),
        bottom=float(r.uniform(52, 66)),
        inner=float(r.uniform(50, 76)),
        outer=float(r.uniform(40, 60)),
        col_gap=float(r.uniform(12, 20)),
        body_font=pick(fonts),
        body_size=body,
        body_lead=round(body * float(r.uniform(1.3, 1.45)), 1),
        justify=bool(r.random() < 0.6),
        para_gap=float(pick([0.0, 2.0, 4.0, 6.0])),
        indent=float(pick([0.0, 0.0, 10.0, 14.0])),
        soft_hyphens=bool(r.random() < 0.5),
        head_font=pick(fonts),
        cap_font=cap_font,
        cap_italic=bool(r.random() < 0.3),
        cap_size=cap,
        cap_lead=round(cap * float(r.uniform(1.25, 1.4)), 1),
        label_font=pick([cap_font, "DejaVu Sans", "DejaVu Serif"]),
        label_italic=bool(r.random() < 0.2),
        label_color=pick(["#000", "#8b1a1a", "#1d3f6e"]),
        heads=pick(["top", "bottom"]),
        cap_gap=float(r.uniform(4, 8)),
    )


def look_for(style: BookStyle, seed: int) -> Look:
    return LOOKS.get(style.name) or random_look(seed, style.name)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


_LONG_WORD = re.compile(r"[A-Za-z]{11,}")


def soft_hyphenate(text: str) -> str:
    """Discretionary hyphens in long words, never within four letters of either end."""

    def cut(m: re.Match[str]) -> str:
        w = m.group(0)
        stops = range(5, len(w) - 4, 5)
        return "".join(w[a:b] + ("\u00ad" if b < len(w) else "") for a, b in _spans(w, stops))

    return _LONG_WORD.sub(cut, text)


def _spans(word: str, stops) -> list[tuple[int, int]]:
    edges = [0, *stops, len(word)]
    return list(itertools.pairwise(edges))


def _snap(x0: float, y0: float, w: float, h: float) -> tuple[float, float, float, float]:
    """A rectangle on whole CSS pixels, in points: Chromium paints images pixel-snapped."""
    px0, py0 = round(x0 / PX), round(y0 / PX)
    pw, ph = max(1, round(w / PX)), max(1, round(h / PX))
    return (px0 * PX, py0 * PX, (px0 + pw) * PX, (py0 + ph) * PX)


def _css(look: Look) -> str:
    def font(family: str, size: float, lead: float, italic: bool = False, bold: bool = False):
        return (
            f"font-family:'{family}';font-size:{size}pt;line-height:{lead}pt;"
            f"font-style:{'italic' if italic else 'normal'};"
            f"font-weight:{'bold' if bold else 'normal'};"
        )

    return f"""
@page {{ size: {look.page_w / 72:.4f}in {look.page_h / 72:.4f}in; margin: 0; }}
html, body {{ margin: 0; padding: 0; }}
body {{ font-kerning: normal; -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
.page {{ position: relative; overflow: hidden; width: {look.page_w}pt; height: {look.page_h}pt;
  break-after: page; page-break-after: always; }}
.page:last-child {{ break-after: auto; page-break-after: auto; }}
.page > * {{ position: absolute; margin: 0; padding: 0; }}
#measure {{ position: absolute; left: 0; top: 0; visibility: hidden; }}
#measure > * {{ margin: 0; padding: 0; }}
.b {{ {font(look.body_font, look.body_size, look.body_lead)}
  text-align: {"justify" if look.justify else "left"}; text-indent: {look.indent}pt;
  hyphens: manual; }}
.h1 {{ {font(look.head_font, look.chapter_size, look.chapter_size * 1.25, bold=True)}
  white-space: nowrap; }}
.h2 {{ {font(look.head_font, look.section_size, look.section_size * 1.3, bold=True)}
  white-space: nowrap; }}
.cap {{ {font(look.cap_font, look.cap_size, look.cap_lead, italic=look.cap_italic)}
  text-align: left; }}
.cap .lab {{ font-family: '{look.label_font}'; font-weight: bold;
  font-style: {"italic" if look.label_italic else "normal"}; color: {look.label_color}; }}
.rh {{ {font(look.head_font, look.head_size, look.head_size * 1.3, italic=True)}
  white-space: nowrap; }}
.fo {{ {font(look.head_font, look.head_size + 0.5, look.head_size * 1.3, bold=True)} }}
.rule {{ border-top: 0.5pt solid #555; height: 0; }}
.pl {{ font-family: 'DejaVu Sans'; font-weight: bold; font-size: 11pt; line-height: 12pt; }}
.plb {{ font-family: 'DejaVu Sans'; font-weight: bold; font-size: 9pt; line-height: 10pt; }}
table.tb {{ border-collapse: collapse; font-family: 'DejaVu Sans'; font-size: 7.5pt;
  line-height: 9pt; border-top: 1pt solid #000; border-bottom: 1pt solid #000; }}
table.tb th {{ text-align: left; font-weight: bold; border-bottom: 0.5pt solid #000;
  padding: 2pt 3pt; }}
table.tb td {{ text-align: left; padding: 2pt 3pt; }}
.title {{ font-family: 'DejaVu Serif'; font-weight: bold; font-size: 24pt; line-height: 30pt; }}
.sub {{ font-family: 'DejaVu Serif'; font-style: italic; font-size: 13pt; line-height: 16pt; }}
.toc {{ font-family: '{look.body_font}'; font-size: 10.5pt; line-height: 13pt;
  display: flex; justify-content: space-between; }}
img {{ display: block; }}
"""


_MEASURE_JS = """([cls, inner, width]) => {
  const m = document.getElementById('measure');
  m.style.width = width + 'pt';
  m.innerHTML = '<div class="' + cls + '">' + inner + '</div>';
  return m.firstElementChild.getBoundingClientRect().height;
}"""

_BOXES_JS = """(ids) => {
  const pages = Array.from(document.querySelectorAll('.page'));
  const tops = pages.map(p => p.getBoundingClientRect().top + window.scrollY);
  const out = {};
  for (const id of ids) {
    const el = document.getElementById(id);
    if (!el) { out[id] = null; continue; }
    let r = el.getBoundingClientRect();
    if (el.dataset.text) {
      const rg = document.createRange();
      rg.selectNodeContents(el);
      r = rg.getBoundingClientRect();
    }
    const page = el.closest('.page');
    const pi = pages.indexOf(page);
    const pr = page.getBoundingClientRect();
    out[id] = [pi, r.left - pr.left, r.top - pr.top, r.right - pr.left, r.bottom - pr.top];
  }
  return {boxes: out, tops: tops};
}"""


class _Browser:
    """One headless Chromium page, used to measure blocks during layout and to print.

    Playwright's sync API refuses to run on a thread with a running asyncio loop (a notebook,
    or a test session that already drives a browser), so every call goes to one thread of
    its own, which creates, uses and closes the browser.
    """

    def __init__(self, look: Look) -> None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the dev extra installs it
            raise RuntimeError("the chromium producer needs the playwright package") from exc
        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"the chromium producer needs a Chromium binary at {CHROMIUM}")
        self.look = look
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium-producer")
        try:
            self._call(self._start)
        except BaseException:
            self._thread.shutdown()
            raise
        self._cache: dict[tuple[str, str, float], float] = {}

    def _call(self, fn, *args):
        return self._thread.submit(fn, *args).result()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        look = self.look
        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            vw, vh = round(look.page_w / PX), round(look.page_h / PX)
            self.page = self._browser.new_page(viewport={"width": vw, "height": vh})
            self.page.emulate_media(media="print")
            self.page.set_content(
                f"<html><head><style>{_css(look)}</style></head>"
                "<body><div id='measure'></div></body></html>"
            )
        except Exception:
            self._pw.stop()
            raise

    def height(self, cls: str, inner: str, width: float) -> float:
        """Height in points of a block of class `cls` holding `inner`, `width` points wide."""
        key = (cls, inner, round(width, 3))
        h = self._cache.get(key)
        if h is None:
            px = self._call(self.page.evaluate, _MEASURE_JS, [cls, inner, width])
            h = self._cache[key] = px * PX
        return h

    def render(self, doc_html: str, ids: list[str]) -> tuple[bytes, dict, list[float]]:
        """Load the finished document, measure `ids` and print it: (PDF, boxes, page tops)."""
        return self._call(self._render, doc_html, ids)

    def _render(self, doc_html: str, ids: list[str]) -> tuple[bytes, dict, list[float]]:
        self.page.set_content(doc_html, wait_until="load")
        self.page.evaluate("document.fonts.ready.then(() => true)")
        measured = self.page.evaluate(_BOXES_JS, ids)
        pdf = self.page.pdf(
            prefer_css_page_size=True, print_background=True, outline=True, tagged=True
        )
        return pdf, measured["boxes"], measured["tops"]

    def close(self) -> None:
        try:
            self._call(self._stop)
        finally:
            self._thread.shutdown()

    def _stop(self) -> None:
        try:
            self._browser.close()
        finally:
            self._pw.stop()


@dataclass
class _Pending:
    """Ids of a placed figure's elements, resolved to measured gold boxes after rendering."""

    gold: GoldFigure
    panels: list[tuple[list[str], tuple[float, float, float, float] | None]]
    caption: str


class HtmlWriter(FlowWriter):
    """The PyMuPDF writer's interface (pages, columns, a cursor, a figure queue) over HTML."""

    def __init__(
        self,
        title: str,
        style: BookStyle,
        rng: np.random.Generator,
        unique_images: int,
        *,
        seed: int = 0,
        look: Look | None = None,
    ) -> None:
        self.title = title
        self.style = style
        self.rng = rng
        self.look = look or look_for(style, seed)
        self.unique_images = unique_images
        self.pages: list[list[str]] = []
        self.col = 0
        self.col_top = self.look.top
        self.y = self.look.top
        self.chapter_head = ""
        self.queue: list[FigureSpec] = []
        self.pending_caption: FigureSpec | None = None
        self.image_pool: dict[tuple, str] = {}
        self.image_counts: dict[tuple, int] = {}
        self.decoys: list[GoldDecoy] = []
        self._decoy_ids: list[tuple[GoldDecoy, str]] = []
        self._figures: list[_Pending] = []
        self._images: list[tuple[str, Box]] = []  # planned image rects, checked after render
        self._svgs: list[str] = []  # ids of vector diagrams, measured after render
        self._nid = 0
        lk = self.look
        self.col_w = (lk.text_w - lk.col_gap * (style.columns - 1)) / style.columns
        self.browser = _Browser(lk)

    # -- frame and pages -------------------------------------------------------------------
    @property
    def pno(self) -> int:
        return len(self.pages)

    @property
    def left_margin(self) -> float:
        # Odd pages are rectos: the binding (inner margin) is on their left.
        return self.look.inner if self.pno % 2 == 1 else self.look.outer

    @property
    def x0(self) -> float:
        return self.left_margin + self.col * (self.col_w + self.look.col_gap)

    def _id(self) -> str:
        self._nid += 1
        return f"e{self._nid}"

    def _put(
        self,
        cls: str,
        x: float,
        y: float,
        inner: str,
        *,
        width: float | None = None,
        tag: str = "div",
        eid: str | None = None,
        text: bool = False,
        style: str = "",
    ) -> str:
        eid = eid or self._id()
        w = f"width:{width:.3f}pt;" if width is not None else ""
        data = " data-text='1'" if text else ""
        self.pages[-1].append(
            f'<{tag} id="{eid}" class="{cls}"{data} '
            f'style="left:{x:.3f}pt;top:{y:.3f}pt;{w}{style}">{inner}</{tag}>'
        )
        return eid

    def new_page(self, *, heads: bool = True) -> None:
        lk = self.look
        self.pages.append([])
        self.col = 0
        self.col_top = lk.top
        self.y = lk.top
        if not heads:
            return
        n = self.pno
        head = self.title if n % 2 == 0 else self.chapter_head
        x0, x1 = self.left_margin, lk.page_w - (lk.outer if n % 2 == 1 else lk.inner)
        width = x1 - x0
        # Verso: folio then head at the outer (left) edge; recto: head then folio at the right.
        inner = (
            f"<span class='fo'>{n}</span>&emsp;{_esc(head)}"
            if n % 2 == 0
            else f"{_esc(head)}&emsp;<span class='fo'>{n}</span>"
        )
        align = "left" if n % 2 == 0 else "right"
        if lk.heads == "top":
            self._put("rh", x0, lk.top - 30, inner, width=width, style=f"text-align:{align}")
            self._put("rule", x0, lk.top - 18, "", width=width)
            bar_y = lk.top - 14
        else:
            self._put("rule", x0, lk.page_h - lk.bottom + 14, "", width=width)
            self._put("rh", x0, lk.page_h - 38, inner, width=width, style=f"text-align:{align}")
            bar_y = lk.page_h - lk.bottom + 18
        if self.style.vector_decor:
            # A coloured header bar: vector decoration that is not a figure.
            eid = self._put("", x0, bar_y, "", width=width, style="height:4pt;background:#8c404d")
            decoy = GoldDecoy("header_bar", self.pno, (x0, bar_y, x0 + width, bar_y + 4))
            self.decoys.append(decoy)
            self._decoy_ids.append((decoy, eid))
        if self.pending_caption:
            spec = self.pending_caption
            self.pending_caption = None
            eid, h = self._write_caption(spec, self.x0, self.y, self.col_w)
            assert spec.gold is not None
            spec.gold.caption_page = self.pno
            for p in self._figures:
                if p.gold is spec.gold:
                    p.caption = eid
            self.y += h + self.look.fig_space
        self.place_queued()

    def room(self) -> float:
        return self.look.page_h - self.look.bottom - self.y

    def title_page(self, title: str) -> None:
        self.new_page(heads=False)
        x = self.left_margin
        self._put("title", x, 200, _esc(title), width=self.look.text_w)
        self._put("sub", x, 250, "Procedurally generated sample edition (HTML, Chromium)")
        self._put("sub", x, 280, _esc(", ".join(content.AUTHORS)))

    # -- text ------------------------------------------------------------------------------
    def _heading_tag(self, level: int) -> str:
        # Real heading elements give Chromium's PDF its outline; books without one use divs.
        return f"h{level}" if self.style.outline else "div"

    def chapter_heading(self, text: str) -> None:
        h = self.browser.height("h1", _esc(text), self.look.text_w)
        self._put("h1", self.x0, self.y, _esc(text), tag=self._heading_tag(1))
        self.y += h + 14
        if self.style.banners:
            self._banner()
        self.col_top = self.y

    def _banner(self) -> None:
        """A decorative gradient strip under the chapter title: a raster that is not a figure."""
        key = ("banner",)
        if key not in self.image_pool:
            ramp = np.linspace(0, 1, 600, dtype=np.float32)[None, :, None]
            c0 = np.asarray((40, 80, 110), np.float32)
            c1 = np.asarray((200, 220, 230), np.float32)
            arr = np.repeat(c0 * (1 - ramp) + c1 * ramp, 40, axis=0).astype(np.uint8)
            self.image_pool[key] = _data_uri(Image.fromarray(arr), "png")
        rect = _snap(self.x0, self.y, self.look.text_w, 30)
        eid = self._img(self.image_pool[key], rect)
        decoy = GoldDecoy("banner", self.pno, rect)
        self.decoys.append(decoy)
        self._decoy_ids.append((decoy, eid))
        self.y = rect[3] + 12

    def heading(self, text: str, size: float, space_before: float) -> None:
        h = self.browser.height("h2", _esc(text), self.col_w)
        need = space_before + h + self.look.body_lead * 3
        if self.room() < need:
            self.advance()
        elif self.y > self.col_top:
            self.y += space_before
        self._put("h2", self.x0, self.y, _esc(text), tag=self._heading_tag(2))
        self.y += h + 4

    def _body_html(self, text: str) -> str:
        return _esc(soft_hyphenate(text) if self.look.soft_hyphens else text)

    def paragraph(self, text: str) -> int:
        """Place a whole paragraph (never split), returning its page number."""
        inner = self._body_html(text)
        height = self.browser.height("b", inner, self.col_w)
        if self.room() < height:
            self.place_queued()
            if self.room() < height:
                self.advance()
                if self.room() < height:
                    self.advance()
        boxed = self.style.vector_decor and self.rng.random() < self.style.vector_decor
        # A key-point frame (an outline, which does not change the layout) is not a figure.
        frame = "outline:0.8pt solid #4d4d80;outline-offset:3pt" if boxed else ""
        eid = self._put("b", self.x0, self.y, inner, width=self.col_w, tag="p", style=frame)
        if boxed:
            box = (self.x0, self.y, self.x0 + self.col_w, self.y + height)
            decoy = GoldDecoy("text_box", self.pno, box)
            self.decoys.append(decoy)
            self._decoy_ids.append((decoy, eid))
        self.y += height + self.look.para_gap
        return self.pno

    # -- tables (not figures) --------------------------------------------------------------
    def table(self, number: str, dx: str) -> None:
        """A table captioned above; HTML (vector rules and text) or a scanned raster."""
        rows = [("Feature", dx, "Main mimic")] + [
            (f, self._pick(["present", "absent", "variable"]), self._pick(["rare", "common"]))
            for f in ("Scale", "Itch", "Symmetry", "Mucosal lesions")
        ]
        width = self.col_w * 0.95
        cap = f"Table {number} Distinguishing {dx.lower()} from its mimics"
        label = f"Table {number}"
        cap_inner = f"<span class='lab'>{_esc(label)}</span> {_esc(cap[len(label) :].strip())}"
        cap_h = self.browser.height("cap", cap_inner, width)
        vector = self.rng.random() < 0.5
        body = "".join(
            "<tr>" + "".join(f"<{t}>{_esc(c)}</{t}>" for c in row) + "</tr>"
            for row, t in zip(rows, ["th"] + ["td"] * (len(rows) - 1), strict=True)
        )
        if vector:
            inner = f"<table class='tb' style='width:{width:.3f}pt'>{body}</table>"
            tab_h = self.browser.height("", inner, width)
        else:
            tab_h = 14.0 * len(rows)
        total = cap_h + 4 + tab_h + 14
        if self.room() < total:
            self.advance()
        x0, y0 = self.x0, self.y
        self._put("cap", x0, y0, cap_inner, width=width, text=True)
        top = y0 + cap_h + 4
        if vector:
            eid = self._id()
            self.pages[-1].append(
                f'<table id="{eid}" class="tb" style="left:{x0:.3f}pt;top:{top:.3f}pt;'
                f'width:{width:.3f}pt">{body}</table>'
            )
            kind = "table"
            rect: Box = (x0, top, x0 + width, top + tab_h)
        else:
            rect = _snap(x0, top, width, tab_h)
            uri = _data_uri(_raster_table(rows, rect), "png")
            eid = self._img(uri, rect)
            kind = "raster_table"
        decoy = GoldDecoy(kind, self.pno, rect, cap)
        self.decoys.append(decoy)
        self._decoy_ids.append((decoy, eid))
        self.y = rect[3] + 14

    # -- figures ---------------------------------------------------------------------------
    def _img(self, uri: str, rect: Box) -> str:
        eid = self._id()
        x0, y0, x1, y1 = rect
        self.pages[-1].append(
            f'<img id="{eid}" alt="" src="{uri}" style="left:{x0:.3f}pt;top:{y0:.3f}pt;'
            f'width:{x1 - x0:.3f}pt;height:{y1 - y0:.3f}pt">'
        )
        self._images.append((eid, rect))
        return eid

    def _pooled(self, key: tuple, make) -> str:
        n = self.image_counts.get(key, 0)
        self.image_counts[key] = n + 1
        pool_key = (*key, n % self.unique_images)
        if pool_key not in self.image_pool:
            self.image_pool[pool_key] = make()
        return self.image_pool[pool_key]

    def _single_image(self, modality: str, rect: Box) -> list[str]:
        """Place one picture; ids of its image elements (three when stored as strips)."""
        px_w = 600 if rect[2] - rect[0] > 200 else (480 if rect[2] - rect[0] > 160 else 400)
        if self.style.tiles and self.rng.random() < self.style.tiles:
            return self._tiled_image(modality, rect, px_w)
        uri = self._pooled(
            (modality,),
            lambda: _data_uri(images.draw(modality, self.rng, px_w, px_w * 3 // 4), "jpeg"),
        )
        return [self._img(uri, rect)]

    def _tiled_image(self, modality: str, rect: Box, px_w: int) -> list[str]:
        """One picture as three abutting strips, cut on whole CSS pixels."""
        img = images.draw(modality, self.rng, px_w, px_w * 3 // 4)
        y_px = [round(rect[1] / PX), 0, 0, round(rect[3] / PX)]
        step = (y_px[3] - y_px[0]) / 3
        y_px[1], y_px[2] = round(y_px[0] + step), round(y_px[0] + 2 * step)
        ids = []
        for a, b in itertools.pairwise(y_px):
            fa = (a - y_px[0]) / (y_px[3] - y_px[0])
            fb = (b - y_px[0]) / (y_px[3] - y_px[0])
            strip = img.crop((0, round(fa * img.height), img.width, round(fb * img.height)))
            ids.append(self._img(_data_uri(strip, "jpeg"), (rect[0], a * PX, rect[2], b * PX)))
        return ids

    def _composite(self, spec: FigureSpec, rect: Box) -> list[tuple[float, float, float, float]]:
        """One raster holding several panels separated by white gutters; panel fractions."""
        uri = self._pooled(
            ("composite", *spec.modalities),
            lambda: _data_uri(draw_composite(spec.modalities, self.rng), "jpeg"),
        )
        self._img(uri, rect)
        return composite_layout(len(spec.modalities))[2]

    def _vector_svg(self, spec: FigureSpec, rect: Box) -> str:
        """The PyMuPDF producer's schematic as inline SVG (1 user unit = 1 pt); its id."""
        x0, y0, x1, y1 = rect
        w, h = x1 - x0, y1 - y0
        el: list[str] = []
        labels: list[tuple[float, float, str]] = []
        if spec.diagram == "layers":
            epi, der = h * 0.22, h * 0.68
            el.append(
                f"<rect x='0.4' y='0.4' width='{w - 0.8:.2f}' height='{h - 0.8:.2f}' "
                "fill='#faede0' stroke='#333' stroke-width='0.8'/>"
            )
            el.append(
                f"<rect x='0' y='{der:.2f}' width='{w:.2f}' height='{h - der:.2f}' fill='#fff2b3'/>"
            )
            step = w / 5
            d = f"M0 {epi:.2f}" + "".join(
                f" C{i * step + step / 3:.2f} {epi + h * 0.08:.2f} "
                f"{i * step + 2 * step / 3:.2f} {epi + h * 0.08:.2f} {(i + 1) * step:.2f} {epi:.2f}"
                for i in range(5)
            )
            el.append(f"<path d='{d}' fill='none' stroke='#803333' stroke-width='1.2'/>")
            r = (h - der) * 0.28
            for i in range(4):
                cx = w * (0.12 + 0.2 * i)
                el.append(
                    f"<circle cx='{cx:.2f}' cy='{der + (h - der) * 0.5:.2f}' r='{r:.2f}' "
                    "fill='#ffe680' stroke='#b39933' stroke-width='0.6'/>"
                )
            for i in range(3):
                vx = w * (0.2 + 0.25 * i)
                el.append(
                    f"<line x1='{vx:.2f}' y1='{epi + h * 0.15:.2f}' x2='{vx + 12:.2f}' "
                    f"y2='{der:.2f}' stroke='#b31a1a' stroke-width='1.5'/>"
                )
            el.append(
                f"<line x1='0' y1='{der:.2f}' x2='{w:.2f}' y2='{der:.2f}' stroke='#666' "
                "stroke-width='0.5' stroke-dasharray='3 2'/>"
            )
            ys = (h * 0.08, (epi + der) / 2, der + (h - der) * 0.15)
            labels = [(w - 52, y + 7, t) for y, t in zip(ys, content.LAYER_LABELS, strict=True)]
        else:
            el.append(
                f"<rect x='0.25' y='0.25' width='{w - 0.5:.2f}' height='{h - 0.5:.2f}' "
                "fill='#f2f5fa' stroke='#808080' stroke-width='0.5'/>"
            )
            cx, head = w * 0.4, h * 0.09
            top = h * 0.06 + 2 * head
            el.append(
                f"<circle cx='{cx:.2f}' cy='{h * 0.06 + head:.2f}' r='{head:.2f}' "
                "fill='#e6d9cc' stroke='#33334d' stroke-width='0.9'/>"
            )
            el.append(
                f"<rect x='{cx - w * 0.09:.2f}' y='{top + 2:.2f}' width='{w * 0.18:.2f}' "
                f"height='{h * 0.42 - 2:.2f}' fill='#e6d9cc' stroke='#33334d' "
                "stroke-width='0.9'/>"
            )
            for side in (-1, 1):
                sx, lx = cx + side * w * 0.09, cx + side * w * 0.05
                el.append(
                    f"<line x1='{sx:.2f}' y1='{top + 6:.2f}' x2='{sx + side * w * 0.12:.2f}' "
                    f"y2='{top + h * 0.38:.2f}' stroke='#33334d' stroke-width='2.5'/>"
                )
                el.append(
                    f"<line x1='{lx:.2f}' y1='{top + h * 0.42:.2f}' "
                    f"x2='{lx + side * w * 0.03:.2f}' y2='{h * 0.95:.2f}' stroke='#33334d' "
                    "stroke-width='2.5'/>"
                )
            for fx, fy in ((0.38, 0.35), (0.44, 0.5), (0.33, 0.62), (0.28, 0.45), (0.47, 0.82)):
                el.append(f"<circle cx='{w * fx:.2f}' cy='{h * fy:.2f}' r='2.8' fill='#cc1a26'/>")
            labels = [(w - 62, 16, "Anterior"), (w - 62, h * 0.5, "L"), (8, h * 0.5, "R")]
        for lx, ly, text in labels:
            el.append(
                f"<text x='{lx:.2f}' y='{ly:.2f}' font-family='DejaVu Sans' font-size='7' "
                f"fill='#1a1a1a'>{_esc(text)}</text>"
            )
        eid = self._id()
        self.pages[-1].append(
            f'<svg id="{eid}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.3f} {h:.3f}" '
            f'style="left:{x0:.3f}pt;top:{y0:.3f}pt;width:{w:.3f}pt;height:{h:.3f}pt;'
            f'display:block">{"".join(el)}</svg>'
        )
        self._svgs.append(eid)
        return eid

    def figure_geometry(self, spec: FigureSpec, width: float) -> tuple[float, float]:
        """Width and height of the image block of a figure in a frame `width` wide."""
        n = len(spec.modalities)
        one = self.style.columns == 1
        if spec.kind == "vector":
            w = width * (0.6 if one else 0.95)
            return w, w * 0.62
        if spec.kind == "single":
            w = width * (0.66 if one else 1.0)
            if spec.position == "beside":
                w = width * 0.58
            return w, w * 0.75
        gut = self.style.gutter
        if spec.kind.startswith("row"):
            pw = (width - gut * (n - 1)) / n
            return width, pw * 0.75 + self._below()
        if spec.kind == "grid4":
            w = width * (0.84 if one else 1.0)
            pw = (w - gut) / 2
            return w, (pw * 0.75 + self._below()) * 2 + gut
        cols, rows = (2, 2) if n == 4 else (n, 1)
        w = width * (0.94 if n != 4 else 0.8) if one else width
        return w, w * (rows * 240 + (rows - 1) * 12) / (cols * 320 + (cols - 1) * 12)

    def _below(self) -> float:
        return 12.0 if self.style.letters_below else 0.0

    def _caption_inner(self, spec: FigureSpec) -> str:
        label = f"{self.style.label_word} {spec.label}"
        rest = spec.caption[len(label) :].strip()
        return f"<span class='lab'>{_esc(label)}</span> {_esc(rest)}"

    def _write_caption(self, spec: FigureSpec, x: float, y: float, width: float):
        inner = self._caption_inner(spec)
        h = self.browser.height("cap", inner, width)
        eid = self._put("cap", x, y, inner, width=width, text=True)
        return eid, h

    def _figure_total(self, spec: FigureSpec) -> tuple[float, float, float, float]:
        lk = self.look
        img_w, img_h = self.figure_geometry(spec, self.col_w)
        cap_w = self.col_w - img_w - 10 if spec.position == "beside" else self.col_w
        cap_h = self.browser.height("cap", self._caption_inner(spec), cap_w)
        if spec.position == "beside":
            total = max(img_h, cap_h) + lk.fig_space + 4
        elif spec.position == "next_page":
            total = img_h + lk.fig_space + 4
        else:
            total = img_h + lk.cap_gap + cap_h + lk.fig_space + 4
        return img_w, img_h, total, cap_h

    def _gold(
        self, spec: FigureSpec, bbox: Box, panels: list[GoldPanel], pos: str, style: str
    ) -> GoldFigure:
        modalities = set(spec.modalities)
        return GoldFigure(
            label=spec.label,
            page=self.pno,
            bbox=bbox,
            caption=spec.caption,
            caption_bbox=(0.0, 0.0, 0.0, 0.0),
            caption_page=self.pno,
            panels=panels,
            modality=spec.modalities[0] if len(modalities) == 1 else "mixed",
            age=spec.age,
            sex=spec.sex,
            diagnosis=spec.diagnosis,
            section=spec.section,
            style=style,
            caption_position=pos,
            layout=f"{self.style.columns}col",
        )

    def place_pair(self, a: FigureSpec, b: FigureSpec) -> bool:
        """Two single figures side by side, each with its own caption underneath."""
        lk = self.look
        half = (self.col_w - 18) / 2
        img_h = half * 0.75
        caps = [self.browser.height("cap", self._caption_inner(s), half) for s in (a, b)]
        total = img_h + lk.cap_gap + max(caps) + lk.fig_space + 4
        if self.room() < total:
            return False
        top = self.y + 4
        for k, spec in enumerate((a, b)):
            left = self.x0 + k * (half + 18)
            rect = _snap(left, top, half, img_h)
            ids = self._single_image(spec.modalities[0], rect)
            cap_id, _ = self._write_caption(spec, left, rect[3] + lk.cap_gap, half)
            panel = GoldPanel(None, rect, spec.subcaptions[0], spec.modalities[0])
            spec.gold = self._gold(spec, rect, [panel], "below", "side_by_side")
            self._figures.append(_Pending(spec.gold, [(ids, None)], cap_id))
        self.y = top + total
        return True

    def place_figure(self, spec: FigureSpec) -> None:
        lk = self.look
        img_w, img_h, total, cap_h = self._figure_total(spec)
        n = len(spec.modalities)
        pos = spec.position
        top = self.y + 4
        cap_top = top + img_h + lk.cap_gap
        if pos == "above":
            cap_top = top
            top = top + cap_h + lk.cap_gap
        elif pos == "next_page":
            top = lk.page_h - lk.bottom - img_h  # image sinks to the page foot
        left = self.x0 if pos == "beside" else self.x0 + (self.col_w - img_w) / 2
        frame = _snap(left, top, img_w, img_h)
        parts: list[tuple[list[str], tuple[float, float, float, float] | None]] = []
        if spec.kind == "vector":
            parts = [([self._vector_svg(spec, frame)], None)]
            rects = [frame]
        elif spec.kind.startswith("composite"):
            fracs = self._composite(spec, frame)
            eid = self._images[-1][0]
            parts = [([eid], f) for f in fracs]
            x0, y0, x1, y1 = frame
            rects = [
                (
                    x0 + f[0] * (x1 - x0),
                    y0 + f[1] * (y1 - y0),
                    x0 + f[2] * (x1 - x0),
                    y0 + f[3] * (y1 - y0),
                )
                for f in fracs
            ]
        else:
            if spec.kind == "single":
                rects = [frame]
            else:
                cells = grid_cells(spec, left, top, img_w, self.style.gutter, self._below())
                rects = [_snap(*cell) for cell in cells]
            for i, (rect, modality) in enumerate(zip(rects, spec.modalities, strict=True)):
                parts.append((self._single_image(modality, rect), None))
                if n > 1:
                    letter = LETTERS[i].upper() if spec.upper else LETTERS[i]
                    if self.style.letters_below:
                        self._put(
                            "plb",
                            rect[0],
                            rect[3] + 1,
                            letter,
                            width=rect[2] - rect[0],
                            style="text-align:center",
                        )
                        continue
                    ink = "#000" if modality == "pathological" else "#fff"
                    self._put("pl", rect[0] + 4, rect[1] + 2, letter, style=f"color:{ink}")
        panels = [
            GoldPanel(LETTERS[i] if n > 1 else None, r, spec.subcaptions[i], m)
            for i, (r, m) in enumerate(zip(rects, spec.modalities, strict=True))
        ]
        cap_id = ""
        if pos == "beside":
            cap_id, _ = self._write_caption(spec, left + img_w + 10, top, self.col_w - img_w - 10)
        elif pos != "next_page":
            cap_id, _ = self._write_caption(spec, self.x0, cap_top, self.col_w)
        bbox = (
            min(r[0] for r in rects),
            min(r[1] for r in rects),
            max(r[2] for r in rects),
            max(r[3] for r in rects),
        )
        spec.gold = self._gold(spec, bbox, panels, pos, spec.kind)
        self._figures.append(_Pending(spec.gold, parts, cap_id))
        if pos == "next_page":
            self.pending_caption = spec
            self.new_page()
        else:
            self.y = max(self.y, top - 4) + total if pos != "above" else cap_top + total

    # -- output ----------------------------------------------------------------------------
    def _contents(self, toc: list[list]) -> None:
        """Fill page 2 with the chapter list, now that page numbers are known."""
        page = self.pages[1]
        lk = self.look
        x = lk.outer  # page 2 is a verso
        page.append(f'<div class="h1" style="left:{x}pt;top:{lk.top + 20}pt">Contents</div>')
        y = lk.top + 64
        for lvl, text, pno in toc:
            if lvl != 1 or y > lk.page_h - lk.bottom - 14:
                continue
            page.append(
                f'<div class="toc" style="left:{x}pt;top:{y:.2f}pt;width:{lk.text_w}pt">'
                f"<span>{_esc(text)}</span><span>{pno}</span></div>"
            )
            y += 16

    def document(self) -> str:
        body = "\n".join(f'<div class="page">{"".join(parts)}</div>' for parts in self.pages)
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(self.title)}</title><style>{_css(self.look)}</style></head>"
            f"<body>{body}</body></html>"
        )

    def finish(self, path: Path, toc: list[list], seed: int, style: str) -> tuple[int, float]:
        """Print the book, replace planned boxes by measured ones; (page count, page width)."""
        self._contents(toc)
        ids = [eid for eid, _ in self._images]
        ids += [p.caption for p in self._figures if p.caption]
        ids += [eid for _, eid in self._decoy_ids]
        ids += self._svgs
        pdf, boxes, tops = self.browser.render(self.document(), ids)
        lk = self.look
        page_h_px = lk.page_h / PX
        for i, top in enumerate(tops):
            if abs(top - i * page_h_px) > 0.01:
                raise RuntimeError(f"page {i + 1} starts at {top}px, not {i * page_h_px}px")

        def box(eid: str, page: int) -> Box:
            got = boxes.get(eid)
            if got is None:
                raise RuntimeError(f"element {eid} was not laid out")
            pi, x0, y0, x1, y1 = got
            if pi + 1 != page:
                raise RuntimeError(f"element {eid} landed on page {pi + 1}, planned {page}")
            return (round(x0 * PX, 2), round(y0 * PX, 2), round(x1 * PX, 2), round(y1 * PX, 2))

        for eid, planned in self._images:
            got = boxes.get(eid)
            measured = [v * PX for v in got[1:]] if got else None
            if (
                measured is None
                or max(abs(a - b) for a, b in zip(measured, planned, strict=True)) > 0.02
            ):
                # Images sit on whole CSS px; anywhere else the paint would not match the box.
                raise RuntimeError(f"image {eid} planned at {planned}, laid out at {measured}")
        for p in self._figures:
            g = p.gold
            rects = []
            for (eids, frac), gp in zip(p.panels, g.panels, strict=True):
                parts = [box(e, g.page) for e in eids]
                r = (
                    min(b[0] for b in parts),
                    min(b[1] for b in parts),
                    max(b[2] for b in parts),
                    max(b[3] for b in parts),
                )
                if frac is not None:
                    w, h = r[2] - r[0], r[3] - r[1]
                    r = (
                        round(r[0] + frac[0] * w, 2),
                        round(r[1] + frac[1] * h, 2),
                        round(r[0] + frac[2] * w, 2),
                        round(r[1] + frac[3] * h, 2),
                    )
                gp.bbox = r
                rects.append(r)
            g.bbox = (
                min(r[0] for r in rects),
                min(r[1] for r in rects),
                max(r[2] for r in rects),
                max(r[3] for r in rects),
            )
            if p.caption:
                g.caption_bbox = box(p.caption, g.caption_page)
        for decoy, eid in self._decoy_ids:
            decoy.bbox = box(eid, decoy.page)
        # The PDF itself: one page per page box, of the planned size, printed by Chromium.
        doc = pymupdf.open(stream=pdf, filetype="pdf")
        try:
            if doc.page_count != len(self.pages):
                raise RuntimeError(
                    f"Chromium printed {doc.page_count} pages, laid out {self.pages}"
                )
            r = doc[0].rect
            if abs(r.width - lk.page_w) > 0.5 or abs(r.height - lk.page_h) > 0.5:
                raise RuntimeError(f"Chromium printed {r} pages, not {lk.page_w}x{lk.page_h}")
            producer = doc.metadata.get("producer", "")
            if "Skia" not in producer:
                raise RuntimeError(f"unexpected PDF producer {producer!r}")
        finally:
            doc.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf)
        return len(self.pages), lk.page_w

    def close(self) -> None:
        self.browser.close()


def _data_uri(img: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(buf, "JPEG", quality=88, optimize=False)
        mime = "image/jpeg"
    else:
        img.save(buf, "PNG", optimize=False, compress_level=6)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _raster_table(rows: list[tuple[str, str, str]], rect: Box) -> Image.Image:
    """A scanned-looking table: grey rows of text drawn in pixels."""
    px_w, px_h = int((rect[2] - rect[0]) * 2), int((rect[3] - rect[1]) * 2)
    img = Image.new("L", (px_w, px_h), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=15)
    row_h = px_h / len(rows)
    for r, row in enumerate(rows):
        y = int(r * row_h)
        draw.line((0, y, px_w, y), fill=0, width=1)
        for c, cell in enumerate(row):
            draw.text((c * px_w // 3 + 6, y + 6), cell, fill=0, font=font)
    return img


__all__ = ["LOOKS", "HtmlWriter", "Look", "look_for", "random_look", "soft_hyphenate"]
