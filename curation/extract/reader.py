"""Page reader: turn a PyMuPDF page into plain text blocks, image placements and a section path."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import pymupdf

from .annotate import parse_label
from .errors import PdfError
from .model import Box

MIN_IMAGE_PT = 28.0  # smaller placements are icons, bullets or rules
FULL_PAGE_FRACTION = 0.85  # larger ones are page backgrounds or scans
MAX_ASPECT = 6.0
DRAWING_TOLERANCE = 6.0  # points between strokes of one vector drawing (table rows are wider)
HEADING_EXCLUDE = re.compile(r"^\s*(?:Fig(?:ure)?s?\.?|FIG(?:URE)?S?\.?|Table|TABLE|Tab\.)\s*\d")
DECODE_ERRORS = re.compile(
    r"zlib|jpeg|jpx|jbig2|flate|lzw|ccitt|truncated|corrupt|unexpected|premature|"
    r"cannot|failed|error",
    re.I,
)


@dataclass
class Span:
    text: str
    font: str
    size: float
    bold: bool
    bbox: Box


@dataclass
class Block:
    """A text block with the few font facts the caption finder needs."""

    bbox: Box
    text: str
    lines: list[str]
    spans: list[Span]
    # A running head, footer or folio (see `mark_running_heads`): never part of a caption.
    furniture: bool = False

    @property
    def first_font(self) -> tuple[str, float, bool]:
        s = self.spans[0]
        return s.font, round(s.size, 1), s.bold

    @property
    def size(self) -> float:
        sizes = [s.size for s in self.spans if s.text.strip()]
        return round(max(set(sizes), key=sizes.count), 1) if sizes else 0.0


@dataclass
class Placement:
    bbox: Box
    xref: int
    width_px: int
    height_px: int
    tiles: int = 1  # >1 when the picture is stored as abutting strips, merged here
    more_xrefs: list[int] = field(default_factory=list)
    vector: bool = False  # a cluster of vector drawings (xref 0, no pixels), not a raster


@dataclass
class PageData:
    """A page in its reading space (see `reading_matrix`): upright as its text reads."""

    number: int
    width: float
    height: float
    blocks: list[Block]
    images: list[Placement]
    text: str
    section: list[str] = field(default_factory=list)
    # Reading space -> PyMuPDF's page coordinates; None when they are the same (unrotated
    # pages, and rotated ones whose text runs upright before the rotation).
    to_pdf: pymupdf.Matrix | None = None
    # Clusters of vector drawings large enough to be a figure (see `read_drawings`).
    drawings: list[Placement] = field(default_factory=list)
    # Boxes of every visible vector path (reading space): arrows and circles drawn on a photo
    # are found among these (see `flags.vector_marks`).
    marks: list[Box] = field(default_factory=list)

    def pdf_box(self, box: Box) -> Box:
        """A box of this page in PyMuPDF's page coordinates, the contract's space."""
        return to_pdf_box(box, self.to_pdf)

    @property
    def pdf_size(self) -> tuple[float, float]:
        r = pymupdf.Rect(0, 0, self.width, self.height)
        if self.to_pdf is not None:
            r = r * self.to_pdf
        return r.width, r.height


def to_pdf_box(box: Box, matrix: pymupdf.Matrix | None) -> Box:
    if matrix is None:
        return tuple(box)  # type: ignore[return-value]
    r = pymupdf.Rect(box) * matrix
    return (round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2))


def unrotated_rect(page: pymupdf.Page) -> pymupdf.Rect:
    """The page in the coordinates text and image boxes come in: before /Rotate is applied."""
    return pymupdf.Rect(0, 0, page.cropbox.width, page.cropbox.height)


TEXT_FLAGS = (
    pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES & ~pymupdf.TEXT_PRESERVE_LIGATURES
)


def reading_matrix(page: pymupdf.Page, lines: list[dict] | None = None) -> pymupdf.Matrix:
    """Matrix from PyMuPDF's page coordinates to the space the layout is read in.

    PyMuPDF reports every box in the unrotated page (only `page.rect` turns with /Rotate). The
    layout rules (caption below, panels left to right, columns) need the page upright as its
    text reads. A page drawn normally and then given /Rotate reads upright before the rotation:
    identity. A landscape page whose content was drawn turned so that /Rotate sets it upright
    (scanners, landscape figures in a portrait book) reads upright after it: the page's
    rotation matrix. The text's own direction decides; a page without text stays unrotated.
    """
    if page.rotation % 360 == 0:
        return pymupdf.Identity
    if lines is None:
        raw = page.get_text("dict", flags=TEXT_FLAGS)
        lines = [ln for b in raw["blocks"] if b.get("type", 0) == 0 for ln in b["lines"]]
    m = page.rotation_matrix
    before = after = 0
    for ln in lines:
        dx, dy = ln["dir"]
        n = sum(len(s["text"].strip()) for s in ln["spans"])
        before += n if dx > 0.9 else 0
        after += n if dx * m.a + dy * m.c > 0.9 else 0
    return pymupdf.Matrix(m) if after > before else pymupdf.Identity


def reading_rect(page: pymupdf.Page, matrix: pymupdf.Matrix | None = None) -> pymupdf.Rect:
    """The page's frame in its reading space."""
    m = reading_matrix(page) if matrix is None else matrix
    return unrotated_rect(page) * m


def _is_identity(m: pymupdf.Matrix) -> bool:
    return tuple(m) == tuple(pymupdf.Identity)


def reading_inverse(matrix: pymupdf.Matrix) -> pymupdf.Matrix | None:
    """Reading space back to PyMuPDF's page coordinates, None for the identity."""
    return None if _is_identity(matrix) else ~pymupdf.Matrix(matrix)


def _is_bold(span: dict) -> bool:
    return bool(span["flags"] & pymupdf.TEXT_FONT_BOLD) or bool(
        re.search(r"bold|black|heavy|semibold|demi", span["font"], re.I)
    )


SOFT_HYPHEN = "\u00ad"
# A line ending in a soft hyphen, possibly followed by the hyphen glyph the producer drew for it
# (Chromium writes U+00AD U+2010): a discretionary break, always joined without the hyphen.
SOFT_BREAK = re.compile("\u00ad[-\u2010]?$")
LINE_END_HYPHEN = re.compile(r"([A-Za-z]+)[-\u2010]$")
LINE_START_WORD = re.compile(r"[A-Za-z]+")
WORD = re.compile(r"[A-Za-z]+(?:[-\u2010][A-Za-z]+)*")


@dataclass
class Hyphenation:
    """What the document itself says about words broken at a hyphen at a line end.

    A hyphen at a line end is either the typesetter's ("erythe-/matous": join without it) or
    part of the word ("well-/demarcated": keep it). PyMuPDF's own books never break there;
    TeX and InDesign break mostly inside words; browsers (Chromium) only at hard hyphens unless
    told to hyphenate. So the evidence is the document's own vocabulary: a break is a
    compound when the hyphenated form occurs unbroken within a line elsewhere and the joined form
    does not, and discretionary in the reverse case. Breaks with no evidence either way follow
    the document's majority among the decided ones, discretionary when there are none; but a
    document that marks its discretionary breaks with soft hyphens (as Chromium prints them)
    has told us that its plain line-end hyphens are hard ones.
    """

    hyphenated: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)
    compound_votes: int = 0
    discretionary_votes: int = 0
    soft_breaks: int = 0

    def learn(self, blocks: list[Block]) -> None:
        for b in blocks:
            for ln in b.lines:
                self.soft_breaks += bool(SOFT_BREAK.search(ln.rstrip()))
                tokens = WORD.findall(ln.replace(SOFT_HYPHEN, ""))
                if tokens and LINE_END_HYPHEN.search(ln.rstrip()):
                    tokens = tokens[:-1]  # the broken fragment is not evidence
                for t in tokens:
                    t = t.lower().replace("\u2010", "-")
                    (self.hyphenated if "-" in t else self.words).add(t)

    def decide(self, left: str, right: str) -> bool | None:
        """True: keep the hyphen (a compound); False: drop it; None: no evidence."""
        compound = f"{left}-{right}".lower()
        joined = f"{left}{right}".lower()
        if compound in self.hyphenated and joined not in self.words:
            return True
        if joined in self.words and compound not in self.hyphenated:
            return False
        return None

    def vote(self, lines_of_blocks: list[list[str]]) -> None:
        """Count the decided breaks, which sets the default for undecided ones."""
        for lines in lines_of_blocks:
            for a, b in itertools.pairwise(lines):
                pair = _hyphen_pair(a, b)
                if pair is None:
                    continue
                d = self.decide(*pair)
                if d is True:
                    self.compound_votes += 1
                elif d is False:
                    self.discretionary_votes += 1

    @property
    def keep_by_default(self) -> bool:
        if self.compound_votes != self.discretionary_votes:
            return self.compound_votes > self.discretionary_votes
        return self.soft_breaks > 0


def _hyphen_pair(a: str, b: str) -> tuple[str, str] | None:
    """(fragment before, word after) when line `a` ends in a hyphen after letters and `b`
    continues in lower case; the only breaks whose hyphen is in doubt."""
    a, b = a.strip(), b.strip()
    if SOFT_BREAK.search(a):
        return None
    m = LINE_END_HYPHEN.search(a)
    w = LINE_START_WORD.match(b)
    if not m or not w or not b[:1].islower():
        return None
    return m.group(1), w.group(0)


def join_lines(lines: list[str], hyphenation: Hyphenation | None = None) -> str:
    """Join wrapped lines into one string, undoing end-of-line hyphenation of lower-case words.

    Soft hyphens are removed (a line ending in one joins without a hyphen). A line ending in a
    hyphen joins the next without a space; the hyphen is dropped when a lower-case word follows
    a letter, unless `hyphenation` (the document's own evidence) says the word is a compound.
    After a digit or before a capital it stays ("45-/year-old").
    """
    out = ""
    for ln in lines:
        ln = ln.strip()
        if not ln:
            continue
        soft = SOFT_BREAK.search(out)
        if soft:
            out = out[: soft.start()] + ln
        elif out.endswith(("-", "\u2010")) and len(out) > 1 and not out[-2].isspace():
            pair = _hyphen_pair(out, ln)
            keep = pair is None
            if pair is not None and hyphenation is not None:
                decided = hyphenation.decide(*pair)
                keep = hyphenation.keep_by_default if decided is None else decided
            out = out + ln if keep else out[:-1] + ln
        elif out:
            out += " " + ln
        else:
            out = ln
    return re.sub(r"\s+", " ", out.replace(SOFT_HYPHEN, "")).strip()


def needs_hyphenation(block: Block) -> bool:
    """Whether the block's text depends on how line-end hyphens are read."""
    return any(_hyphen_pair(a, b) for a, b in itertools.pairwise(block.lines))


def apply_hyphenation(pages: list[PageData]) -> Hyphenation:
    """Re-join, with the evidence of all `pages`, the blocks broken at a line-end hyphen."""
    hy = Hyphenation()
    blocks = [b for pd in pages for b in pd.blocks]
    hy.learn(blocks)
    doubtful = [b for b in blocks if needs_hyphenation(b)]
    hy.vote([b.lines for b in doubtful])
    for pd in pages:
        changed = False
        for b in pd.blocks:
            if needs_hyphenation(b):
                b.text = join_lines(b.lines, hy)
                changed = True
        if changed and pd.text:
            pd.text = "\n\n".join(b.text for b in pd.blocks)
    return hy


def read_blocks(page: pymupdf.Page, matrix: pymupdf.Matrix | None = None) -> list[Block]:
    """Text blocks in PyMuPDF's order, each with joined text and its spans, boxed in the page's
    reading space (`matrix`, found from the text when not given)."""
    blocks = []
    # Ligatures are expanded ("fi", not U+FB01) so that vocabulary and label rules match.
    raw = page.get_text("dict", flags=TEXT_FLAGS)
    if matrix is None:
        lines = [ln for b in raw["blocks"] if b.get("type", 0) == 0 for ln in b["lines"]]
        matrix = reading_matrix(page, lines)
    turn = None if _is_identity(matrix) else matrix

    def box_of(bbox) -> pymupdf.Rect:
        return pymupdf.Rect(bbox) * turn if turn is not None else pymupdf.Rect(bbox)

    for b in raw["blocks"]:
        if b.get("type", 0) != 0:
            continue
        runs = [
            para
            for run in _size_runs(b["lines"])
            for para in _paragraphs(run, [box_of(ln["bbox"]) for ln in run])
        ]
        for run in runs:
            lines, spans = [], []
            box = pymupdf.Rect()
            for ln in run:
                lines.append("".join(s["text"] for s in ln["spans"]))
                box |= box_of(ln["bbox"])
                for s in ln["spans"]:
                    sb = tuple(box_of(s["bbox"])) if turn is not None else tuple(s["bbox"])
                    spans.append(Span(s["text"], s["font"], s["size"], _is_bold(s), sb))
            text = join_lines(lines)
            if not text:
                continue
            blocks.append(Block(tuple(round(v, 2) for v in box), text, lines, spans))
    return blocks


def _line_size(line: dict) -> float:
    sizes = [(len(s["text"].strip()), s["size"]) for s in line["spans"]]
    return max(sizes)[1] if sizes else 0.0


def _size_runs(lines: list[dict]) -> list[list[dict]]:
    """Split a block where the text size changes: MuPDF sometimes glues a caption to the body
    paragraph after it, and the two never share a size in a typeset book."""
    runs: list[list[dict]] = []
    for ln in lines:
        if not runs or abs(_line_size(ln) - _line_size(runs[-1][-1])) > 0.4:
            runs.append([ln])
        else:
            runs[-1].append(ln)
    return runs


PARA_END = re.compile(r"[.!?:][\"'\u201d)\]]?$")
PARA_START = re.compile(r"^[\"'\u201c(\[]?[A-Z0-9]")


def _paragraphs(lines: list[dict], boxes: list[pymupdf.Rect]) -> list[list[dict]]:
    """Split a block where a new paragraph starts with a first-line indent: books that set
    paragraphs without space between them (Chromium's print of such a book gave MuPDF one
    block for two paragraphs, and the citation of the second went to the first).

    A line starts a paragraph when it is indented by 0.6 to 4 em from the block's left edge,
    the line before it sits on that edge and ends a sentence, it starts like a sentence, and
    the indent is the block's convention: its first line has the same indent, or the line
    after returns to the edge. A hanging-indent caption (later lines indented) is not split.
    """
    if len(lines) < 2:
        return [lines]
    left = min(b.x0 for b in boxes)
    texts = ["".join(s["text"] for s in ln["spans"]).strip() for ln in lines]
    out = [[lines[0]]]
    for i in range(1, len(lines)):
        size = _line_size(lines[i]) or 10.0
        indent = boxes[i].x0 - left
        split = (
            0.6 * size <= indent <= 4 * size
            and abs(boxes[i - 1].x0 - left) < 1.0
            and PARA_END.search(texts[i - 1]) is not None
            and PARA_START.match(texts[i]) is not None
            and (
                abs(boxes[0].x0 - left - indent) < 1.0
                or (i + 1 < len(lines) and abs(boxes[i + 1].x0 - left) < 1.0)
            )
        )
        if split:
            out.append([lines[i]])
        else:
            out[-1].append(lines[i])
    return out


HEAD_BAND = 0.085  # share of the page height at top and bottom where running heads sit
_DIGITS = re.compile(r"\d+")


def _head_key(block: Block) -> str:
    return _DIGITS.sub("#", " ".join(block.text.lower().split()))[:60]


def mark_running_heads(pages: list[PageData]) -> None:
    """Flag running heads, footers and folios as `furniture`.

    Journals set the running head in the caption's own font, and MuPDF may emit it right after
    a caption, so position alone ("inside 50 pt of the edge") misses the ones set lower and
    the caption absorbs them. A block is furniture when it sits in the top or bottom band of
    the page and either recurs (digits aside) at about the same height on another page, or is
    a single line with nothing between it and the page edge and a clear gap to the text next
    to it. A block that starts with a figure label is never furniture.
    """
    seen: dict[str, list[tuple[int, float]]] = {}
    for pd in pages:
        for b in pd.blocks:
            if _in_band(b, pd):
                seen.setdefault(_head_key(b), []).append((pd.number, b.bbox[1]))
    for pd in pages:
        for b in pd.blocks:
            if not _in_band(b, pd) or parse_label(b.text):
                continue
            others = [y for n, y in seen.get(_head_key(b), []) if n != pd.number]
            if any(abs(y - b.bbox[1]) < 6 for y in others) or _outermost(b, pd):
                b.furniture = True


def _in_band(b: Block, pd: PageData) -> bool:
    band = HEAD_BAND * pd.height
    return b.bbox[3] <= band or b.bbox[1] >= pd.height - band


def _outermost(b: Block, pd: PageData) -> bool:
    """At most two rows of text (a journal name over a URL, a folio beside them) with no text
    between them and the nearer page edge, set apart from the rest."""
    if b.bbox[3] - b.bbox[1] > 2.6 * (b.size or 10.0):
        return False
    top = b.bbox[3] <= HEAD_BAND * pd.height
    gap = 1.2 * (b.size or 10.0)
    for o in pd.blocks:
        if o is b or not o.text.strip():
            continue
        if (top and o.bbox[1] < b.bbox[1] - 1) or (not top and o.bbox[3] > b.bbox[3] + 1):
            if o.bbox[3] <= HEAD_BAND * pd.height or o.bbox[1] >= pd.height * (1 - HEAD_BAND):
                continue  # another item of the same running head line (folio, journal name)
            return False
        dist = o.bbox[1] - b.bbox[3] if top else b.bbox[1] - o.bbox[3]
        if -1 < dist < gap and o.bbox[0] < b.bbox[2] and b.bbox[0] < o.bbox[2]:
            return False  # the page's text runs on right after it: body, not a head
    return True


def read_images(
    page: pymupdf.Page, *, xrefs: bool = True, matrix: pymupdf.Matrix | None = None
) -> list[Placement]:
    """Raster placements worth considering as figure panels, boxed in the reading space.

    Without `xrefs` PyMuPDF need not hash every image to find its object, which is enough when
    only the geometry matters (the citation scan of `link_book`).
    """
    m = reading_matrix(page) if matrix is None else matrix
    turn = None if _is_identity(m) else m
    frame = reading_rect(page, m)
    area = frame.width * frame.height
    raw: list[Placement] = []
    seen: set[Box] = set()
    for info in page.get_image_info(xrefs=xrefs):
        r = pymupdf.Rect(info["bbox"])
        r = (r * turn if turn is not None else r) & frame
        if r.is_empty or r.width < 1 or r.height < 1:
            continue
        box = (round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2))
        if box in seen:
            continue
        seen.add(box)
        raw.append(Placement(box, int(info.get("xref") or 0), info["width"], info["height"]))
    out = []
    for p in merge_tiles(raw):
        w, h = p.bbox[2] - p.bbox[0], p.bbox[3] - p.bbox[1]
        if w < MIN_IMAGE_PT or h < MIN_IMAGE_PT or w * h > FULL_PAGE_FRACTION * area:
            continue
        if w > MAX_ASPECT * h or h > MAX_ASPECT * w:
            continue  # rules, banners and strips are decoration, never a clinical figure
        out.append(p)
    return out


def _invisible(path: dict) -> bool:
    """A path that paints nothing a reader sees: white (or transparent) fill, no stroke or a
    white one."""
    color = path.get("color")
    stroked = color is not None and (path.get("width") or 0) > 0
    if "s" in (path.get("type") or "") and stroked and not all(c >= 0.99 for c in color):
        return False
    fill = path.get("fill")
    if fill is None or (path.get("fill_opacity") or 1.0) <= 0.01:
        return True
    return all(c >= 0.99 for c in fill)


def _frames_prose(rect: pymupdf.Rect, prose: list[Box]) -> bool:
    """Whether the path's box holds most of a prose block: a frame or shading behind text."""
    for b in prose:
        inter = rect & pymupdf.Rect(b)
        if not inter.is_empty and abs(inter) > 0.5 * abs(pymupdf.Rect(b)):
            return True
    return False


CLIP_CHECK = 0.15  # a path this large (share of the page) may be clipped to far less


def _clipped(items: list[dict]) -> list[dict]:
    """Paths of `get_drawings(extended=True)` with each box cut to the clip in force.

    An imported figure often carries its own page frame or background, clipped by the host to
    the figure's area; unclipped, its box spans the neighbouring figure and the running head,
    and the two figures side by side cluster into one. Paths clipped away entirely are gone.
    """
    stack: list[tuple[int, pymupdf.Rect]] = []
    out = []
    for it in items:
        level = it.get("level", 0)
        while stack and stack[-1][0] >= level:
            stack.pop()
        kind = it.get("type")
        if kind in ("clip", "group"):
            scissor = it.get("scissor")
            rect = pymupdf.Rect(scissor) if kind == "clip" and scissor else None
            if stack:
                rect = stack[-1][1] if rect is None else rect & stack[-1][1]
            if rect is not None:
                stack.append((level, rect))
            continue
        if stack:
            r = pymupdf.Rect(it["rect"]) & stack[-1][1]
            if r.is_empty and (r.width <= 0 and r.height <= 0):
                continue
            it = dict(it, rect=r)
        out.append(it)
    return out


def read_drawings(
    page: pymupdf.Page,
    matrix: pymupdf.Matrix | None = None,
    prose: list[Box] | None = None,
    marks: list[Box] | None = None,
) -> list[Placement]:
    """Clusters of vector drawings (`Page.cluster_drawings`) big enough to be a figure, boxed in
    the reading space. Rules, header bars and table rulings (lines a row apart) fall below the
    size; paths framing or shading `prose` (boxes of long text blocks, reading space) are left
    out before clustering, so a key-point box does not swallow a diagram set close to it.
    `marks`, when given, receives the box of every visible path (reading space).
    Whether a cluster is a figure is decided by its caption (see `layout.vector_groups`).
    """
    m = reading_matrix(page) if matrix is None else matrix
    turn = None if _is_identity(m) else m
    frame = reading_rect(page, m)
    area = frame.width * frame.height
    paths = []
    drawn = page.get_drawings()
    if any(abs(p["rect"]) > CLIP_CHECK * area for p in drawn):
        drawn = _clipped(page.get_drawings(extended=True))
    for p in drawn:
        if _invisible(p) or abs(p["rect"]) > FULL_PAGE_FRACTION * area:
            continue
        r = p["rect"] * turn if turn is not None else p["rect"]
        if marks is not None:
            marks.append((round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2)))
        if prose and _frames_prose(r, prose):
            continue
        paths.append(p)
    if not paths:
        return []
    rects = page.cluster_drawings(
        clip=unrotated_rect(page),
        drawings=paths,
        x_tolerance=DRAWING_TOLERANCE,
        y_tolerance=DRAWING_TOLERANCE,
    )
    out = []
    for r in rects:
        r = (r * turn if turn is not None else pymupdf.Rect(r)) & frame
        w, h = r.width, r.height
        if w < MIN_IMAGE_PT or h < MIN_IMAGE_PT or w * h > FULL_PAGE_FRACTION * area:
            continue
        if w > MAX_ASPECT * h or h > MAX_ASPECT * w:
            continue
        box = (round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2))
        out.append(Placement(box, 0, 0, 0, vector=True))
    return out


def _same_px(a: int, b: int) -> bool:
    return a <= 0 or b <= 0 or abs(a - b) <= max(2, 0.01 * max(a, b))


def merge_tiles(placements: list[Placement]) -> list[Placement]:
    """Join images that abut along a whole edge with the same pixel count along it: one
    picture stored as strips or tiles. Pictures merely set edge to edge (no gutter) stay
    apart, to become panels of their own."""
    items = list(placements)
    merged = True
    while merged:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i].bbox, items[j].bbox
                same_x = abs(a[0] - b[0]) < 0.6 and abs(a[2] - b[2]) < 0.6
                same_y = abs(a[1] - b[1]) < 0.6 and abs(a[3] - b[3]) < 0.6
                touch_v = abs(a[3] - b[1]) < 0.8 or abs(b[3] - a[1]) < 0.8
                touch_h = abs(a[2] - b[0]) < 0.8 or abs(b[2] - a[0]) < 0.8
                pa, pb = items[i], items[j]
                # Strips of one raster keep its pixel rows (side by side) or columns (stacked);
                # two pictures placed edge to edge seldom share them (#11 class 4).
                rows = _same_px(pa.height_px, pb.height_px)
                cols = _same_px(pa.width_px, pb.width_px)
                if (same_x and touch_v and cols) or (same_y and touch_h and rows):
                    box = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    wpx = pa.width_px if same_x else pa.width_px + pb.width_px
                    hpx = pa.height_px + pb.height_px if same_x else pa.height_px
                    items[i] = Placement(
                        box,
                        pa.xref,
                        wpx,
                        hpx,
                        pa.tiles + pb.tiles,
                        [*pa.more_xrefs, pb.xref, *pb.more_xrefs],
                    )
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    return items


def check_images(
    doc: pymupdf.Document, page_no: int, placements: list[Placement], checked: dict[int, str | None]
) -> None:
    """Decode each image once and raise broken_image when MuPDF reports damaged data.

    MuPDF pads a damaged stream and carries on, so the page would render with a grey block; the
    warning log is the only reliable signal, hence the explicit decode.
    """
    xrefs = [x for pl in placements for x in (pl.xref, *pl.more_xrefs) if x > 0]
    fresh = [x for x in xrefs if x not in checked]
    if fresh:
        # Listing the page's images already decoded them into MuPDF's cache, silently; empty
        # the cache so the decode below happens again and reports its warnings.
        pymupdf.TOOLS.store_shrink(100)
    for xref in dict.fromkeys(fresh):
        pymupdf.TOOLS.mupdf_warnings(reset=True)
        problem = None
        try:
            pix = pymupdf.Pixmap(doc, xref)
            del pix
        except Exception as exc:
            problem = str(exc)
        warnings = pymupdf.TOOLS.mupdf_warnings(reset=True)
        if problem is None and warnings:
            bad = [w for w in warnings.splitlines() if DECODE_ERRORS.search(w)]
            bad = [w for w in bad if "Length incorrect" not in w]
            if bad:
                problem = bad[0]
        checked[xref] = problem
    for xref in xrefs:
        problem = checked[xref]
        if problem:
            raise PdfError(
                "broken_image",
                f"page {page_no}: image stream {xref} is damaged and cannot be decoded "
                f"({problem}); re-export the PDF from its source.",
            )


class Sections:
    """Section path at any point of the book: from the PDF outline located on its pages, or,
    for books without an outline, from headings recognised by their font (bold and larger than
    the body text; half as large again makes a chapter).

    Points are compared in reading order: page, then column (a block starting in the right
    half of the page), then height.
    """

    def __init__(self, doc: pymupdf.Document) -> None:
        self.doc = doc
        self.entries: list[tuple[int, int, float, int, str]] = []  # page, col, y, level, title
        for lvl, title, pno, *_ in doc.get_toc(simple=False):
            if pno >= 1:
                # Position is found lazily from the heading text; outline points are unreliable.
                self.entries.append((pno, 0, 0.0, lvl, title.strip()))
        self.from_fonts = not self.entries
        self._located: set[int] = set()
        self._scanned = 0
        self._frames: dict[int, pymupdf.Rect] = {}

    def _col(self, page_no: int, x0: float) -> int:
        return int(x0 >= self._frame(page_no).width / 2 - 5)

    def _frame(self, page_no: int) -> pymupdf.Rect:
        frame = self._frames.get(page_no)
        if frame is None:
            frame = self._frames[page_no] = reading_rect(self.doc[page_no - 1])
        return frame

    def _locate(self, page_no: int, blocks: list[Block] | None) -> None:
        if page_no in self._located:
            return
        self._located.add(page_no)
        idx = [i for i, e in enumerate(self.entries) if e[0] == page_no]
        if not idx:
            return
        if blocks is None:
            blocks = read_blocks(self.doc[page_no - 1])
        for i in idx:
            pno, _, _, lvl, title = self.entries[i]
            key = _norm(title)
            col, y = 0, 0.0
            # Best match: a heading-length block (not a paragraph that merely starts with the
            # same words, nor the running head), else any block starting with the title.
            best: tuple[int, Block] | None = None
            height = self._frame(pno).height
            for b in blocks:
                bt = _norm(b.text)
                if not key or not (bt.startswith(key) or (key.startswith(bt) and len(bt) > 3)):
                    continue
                margin = b.bbox[3] < 50 or b.bbox[1] > height - 50
                rank = 0 if len(bt) <= len(key) + 12 and not margin else 1 if not margin else 2
                if best is None or rank < best[0]:
                    best = (rank, b)
            if best is not None:
                col, y = self._col(pno, best[1].bbox[0]), best[1].bbox[1]
            self.entries[i] = (pno, col, y, lvl, title)

    def _scan_fonts(self, upto: int) -> None:
        """Collect font-recognised headings of pages not yet scanned, up to `upto`."""
        while self._scanned < min(upto, self.doc.page_count):
            self._scanned += 1
            page = self.doc[self._scanned - 1]
            blocks = read_blocks(page)
            sizes: dict[float, int] = {}
            for b in blocks:
                for sp in b.spans:
                    sizes[round(sp.size, 1)] = sizes.get(round(sp.size, 1), 0) + len(sp.text)
            if not sizes:
                continue
            body = max(sizes, key=lambda k: sizes[k])
            found = []
            for b in blocks:
                if b.bbox[3] < 50 or b.bbox[1] > self._frame(self._scanned).height - 50:
                    continue
                if len(b.text) > 90 or len(b.lines) > 2 or not b.spans[0].bold:
                    continue
                if HEADING_EXCLUDE.match(b.text) or b.size < body + 1.0:
                    continue
                if not re.search(r"[A-Za-z]{3}", b.text):
                    continue  # panel letters ("a b") printed over images
                level = 1 if b.size >= 1.5 * body else 2
                found.append(
                    (self._scanned, self._col(self._scanned, b.bbox[0]), b.bbox[1], level, b.text)
                )
            self.entries.extend(sorted(found))

    def path_at(
        self, page_no: int, y: float, blocks: list[Block] | None = None, *, x0: float = 0.0
    ) -> list[str]:
        """Chapter > section > ... path in force at point (x0, y) of the page."""
        if self.from_fonts:
            self._scan_fonts(page_no)
        else:
            self._locate(page_no, blocks)
        here = (page_no, self._col(page_no, x0), y)
        stack: list[tuple[int, str]] = []
        for pno, col, ey, lvl, title in self.entries:
            if (pno, col, ey) > here:
                continue
            while stack and stack[-1][0] >= lvl:
                stack.pop()
            stack.append((lvl, title))
        return [t for _, t in stack]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
