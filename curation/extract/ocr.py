"""Scanned pages: OCR'd text and figure regions found on the page image.

A scanned page is one picture covering the page. Born-digital rules see no text and drop the
picture as a page background, so nothing is found. Here such a page is turned into the same
`PageData` the born-digital reader makes, and from then on captions, pairing, panels and
mentions run through the same code:

- text: the page's own text layer when it has a usable one (a scan already OCR'd by its
  producer), otherwise Tesseract through PyMuPDF's integration, only on this page. The page is
  rendered once at OCR_DPI; photographs on it are painted white and the rest goes to
  `Pixmap.pdfocr_tobytes` (what `Page.get_textpage_ocr` does, less the photographs: Tesseract
  reads their texture as words, and lost caption lines set beside them). Its lines are joined
  into paragraph blocks (it reports each line alone), with one font size per block, so the
  caption finder's size rules see steady sizes, not OCR jitter.
- figures: the page is rendered small; ink (anything darker than the paper) minus the prose
  lines is cut into connected components. Solid ones are pictures (`PageData.images`); sparse
  ones (line art, charts) are clustered like vector paths and handed over as
  `PageData.drawings`, where `layout.vector_groups` decides on them as on a born-digital page.
- crops are rendered from the page, which on a scan is its image.

Pages are decided one by one, so a book with a few scanned pages works page by page.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import median

import cv2
import numpy as np
import pymupdf

from .annotate import parse_label
from .errors import PdfError
from .layout import PANEL_LETTER
from .model import Box
from .reader import (
    FULL_PAGE_FRACTION,
    MAX_ASPECT,
    MIN_IMAGE_PT,
    TEXT_FLAGS,
    Block,
    PageData,
    Placement,
    Span,
    join_lines,
    merge_tiles,
    reading_inverse,
)

OCR_DPI = 200  # Tesseract reads 8-10 pt captions reliably from here; 300 dpi is slower
REGION_DPI = 100  # figure regions are found on a render this fine (1 px = 0.72 pt)
MIN_TEXT_CHARS = 20  # fewer letters and digits than this on a scanned page: no usable text
# A pixel is ink when darker than the paper (its brightest 2 %) by more than the paper's own
# noise: 4 robust standard deviations, at least INK_MIN (pale stains on a clean page) and at most
# INK_MAX (yellowed, mottled paper).
INK_MIN, INK_MAX = 8.0, 40.0
PICTURE_FILL = 0.5  # a component filling this share of its box is a picture, else line art
SOLID_FILL = 0.85  # ... this much, and not of one flat tone: a photograph, not read by OCR
FLAT_SHARE = 0.5  # a region with this share of its pixels in one tone band is flat
PROSE_INK = 0.45  # text lines with less ink than this share are text, not a picture
CLUSTER_PT = 6.0  # line-art pieces this close are one drawing (reader's DRAWING_TOLERANCE)
OCR_TIMEOUT = 300  # seconds for one page; a hung Tesseract must not hold a worker forever
OCR_FONT = "ocr"
SIZE_STEP = 0.5  # block sizes are rounded to this: OCR's per-word size estimates jitter
SIZE_JITTER = 0.6  # ... by up to this share between lines of one paragraph (row bands)
LINE_PITCH = 1.6  # lines of one paragraph are at most this many line heights apart
OPEN_BLOCKS = 4  # paragraphs a line may continue, counted back from the latest
PARA_END_WIDTH = 0.75  # a line shorter than this share of its block may end a paragraph
WORD_GAP = 1.5  # pieces of one line are at most this many text sizes apart


@dataclass
class OcrPage(PageData):
    """A page whose text and figures were read from its image (see the module doc)."""

    ocr: bool = True  # False when the scan's own text layer was used instead of Tesseract


def is_scanned(pd: PageData) -> bool:
    """Whether the page's figures and text came from its image."""
    return isinstance(pd, OcrPage)


def is_ocr(pd: PageData) -> bool:
    """Whether the page's text is Tesseract's reading."""
    return isinstance(pd, OcrPage) and pd.ocr


# --- Tesseract's language data -------------------------------------------------------------

_LIST_LANGS = re.compile(r'"([^"]+)"')
_COMMON = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)


@lru_cache(maxsize=1)
def tessdata(language: str = "eng") -> str:
    """The folder holding `<language>.traineddata`: TESSDATA_PREFIX when it has it, else the
    one `tesseract --list-langs` names, else the usual install places.

    Raises PdfError("ocr_unavailable") saying how to install it: a scanned book cannot be read
    without it, and a curator should learn that instead of getting an empty book.
    """
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    exe = shutil.which("tesseract")
    if exe:
        try:
            out = subprocess.run(
                [exe, "--list-langs"], capture_output=True, text=True, timeout=20, check=False
            )
            found = _LIST_LANGS.search(out.stdout + out.stderr)
            if found:
                candidates.append(found.group(1))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.extend(_COMMON)
    for c in candidates:
        if c and (Path(c) / f"{language}.traineddata").is_file():
            return str(Path(c))
    raise PdfError(
        "ocr_unavailable",
        "This book has scanned pages without a text layer, which need OCR, but Tesseract's "
        f"{language!r} language data was not found: install it (Debian/Ubuntu: apt-get install "
        "tesseract-ocr tesseract-ocr-eng) or set TESSDATA_PREFIX to the folder holding "
        f"{language}.traineddata.",
    )


# --- which pages -----------------------------------------------------------------------------


def scan_image(page: pymupdf.Page) -> bool:
    """Whether the page is a scan: one picture covers it and no other picture is placed on it
    (a born-digital page with a full-page background keeps its own placements).

    The picture may be stored as strips (PDFium writes a scanned page as dozens of abutting
    bands); they are joined as the reader joins image tiles.
    """
    frame = abs(page.rect)
    placed = [
        Placement(tuple(r), 0, 0, 0)
        for info in page.get_image_info(xrefs=False)
        if not (r := pymupdf.Rect(info["bbox"]) & page.cropbox).is_empty
    ]
    big = small = 0
    for pl in merge_tiles(placed):
        r = pymupdf.Rect(pl.bbox)
        if abs(r) >= FULL_PAGE_FRACTION * frame:
            big += 1
        elif r.width >= MIN_IMAGE_PT and r.height >= MIN_IMAGE_PT:
            small += 1
    return big >= 1 and small == 0


def usable_text(lines: list[dict]) -> bool:
    """Whether a text layer is worth reading: enough letters and digits."""
    n = sum(1 for ln in lines for s in ln["spans"] for ch in s["text"] if ch.isalnum())
    return n >= MIN_TEXT_CHARS


# --- text --------------------------------------------------------------------------------------


@dataclass
class _Line:
    bbox: Box
    text: str
    size: float


def _alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _lines(raw: dict, turn: pymupdf.Matrix | None) -> list[_Line]:
    """Tesseract's lines, less its noise: specks read as punctuation or a stray letter, and
    short fragments it reads a second time over a real line."""
    out = []
    for b in raw["blocks"]:
        if b.get("type", 0) != 0:
            continue
        for ln in b["lines"]:
            text = re.sub(r"\s+", " ", "".join(s["text"] for s in ln["spans"])).strip()
            r = pymupdf.Rect(ln["bbox"])
            if turn is not None:
                r = r * turn
            letter = is_letters(text) and (len(text) > 1 or r.width <= 2.5 * r.height)
            if _alnum(text) < 2 and not letter:
                continue
            sizes = [s["size"] for s in ln["spans"] if s["text"].strip()]
            out.append(_Line(_round(r), text, median(sizes) if sizes else r.height))
    return [
        ln
        for ln in out
        if _alnum(ln.text) > 3
        or is_letters(ln.text)
        or not any(_alnum(o.text) > _alnum(ln.text) and _inside(ln.bbox, o.bbox) > 0.3 for o in out)
    ]


def _round(r: pymupdf.Rect) -> Box:
    return (round(r.x0, 2), round(r.y0, 2), round(r.x1, 2), round(r.y1, 2))


def _continues(block: list[_Line], ln: _Line) -> bool:
    """Whether `ln` is the next line of the paragraph `block`: one line pitch below, in its
    column, of about its size, not the start of a caption, and the line before runs on.

    Tesseract's line boxes span the whole row band (a picture beside the column makes them
    tall), so positions are compared by line centres and heights by their median.
    """
    last = block[-1]
    size = median(x.size for x in block)
    if parse_label(ln.text) or abs(ln.size - size) > SIZE_JITTER * size:
        return False
    if is_letters(last.text) or is_letters(ln.text):
        return False
    h = median([x.bbox[3] - x.bbox[1] for x in block] + [ln.bbox[3] - ln.bbox[1]])
    pitch = (ln.bbox[1] + ln.bbox[3]) / 2 - (last.bbox[1] + last.bbox[3]) / 2
    if not 0.3 * h <= pitch <= LINE_PITCH * h:
        return False
    x0 = min(x.bbox[0] for x in block)
    x1 = max(x.bbox[2] for x in block)
    short = len(block) >= 2 and last.bbox[2] < x0 + PARA_END_WIDTH * (x1 - x0)
    if short and re.search(r"[.!?:]['\"”)]?$", last.text):
        return False  # a short line ending a sentence ends the paragraph
    inter = min(x1, ln.bbox[2]) - max(x0, ln.bbox[0])
    return inter > 0.5 * min(x1 - x0, ln.bbox[2] - ln.bbox[0])


def is_letters(text: str) -> bool:
    """A line of nothing but panel letters ("a", "b c")."""
    tokens = text.split()
    return 0 < len(tokens) <= 8 and all(PANEL_LETTER.match(t) for t in tokens)


def join_pieces(lines: list[_Line]) -> list[_Line]:
    """Join pieces of one printed line that Tesseract reported apart (it splits a line at a
    wide word space, e.g. after a bold label), keeping the order of the first piece."""
    out: list[_Line] = []
    for ln in lines:
        for i, prev in enumerate(out):
            h = min(ln.bbox[3] - ln.bbox[1], prev.bbox[3] - prev.bbox[1])
            v = min(ln.bbox[3], prev.bbox[3]) - max(ln.bbox[1], prev.bbox[1])
            gap = max(ln.bbox[0] - prev.bbox[2], prev.bbox[0] - ln.bbox[2])
            if v > 0.6 * h and -1.0 <= gap <= WORD_GAP * max(ln.size, prev.size):
                left, right = (prev, ln) if prev.bbox[0] <= ln.bbox[0] else (ln, prev)
                box = (
                    min(ln.bbox[0], prev.bbox[0]),
                    min(ln.bbox[1], prev.bbox[1]),
                    max(ln.bbox[2], prev.bbox[2]),
                    max(ln.bbox[3], prev.bbox[3]),
                )
                out[i] = _Line(box, f"{left.text} {right.text}", median([ln.size, prev.size]))
                break
        else:
            out.append(ln)
    return out


def build_blocks(lines: list[_Line]) -> list[Block]:
    """Paragraph blocks from lines in Tesseract's reading order, each with one rounded size."""
    groups: list[list[_Line]] = []
    for ln in join_pieces(lines):
        # Tesseract may interleave the lines of two columns: any recent paragraph may go on.
        for g in reversed(groups[-OPEN_BLOCKS:]):
            if _continues(g, ln):
                g.append(ln)
                break
        else:
            groups.append([ln])
    blocks = []
    for g in groups:
        size = round(median(x.size for x in g) / SIZE_STEP) * SIZE_STEP
        box = (
            min(x.bbox[0] for x in g),
            min(x.bbox[1] for x in g),
            max(x.bbox[2] for x in g),
            max(x.bbox[3] for x in g),
        )
        texts = [x.text for x in g]
        spans = [Span(x.text, OCR_FONT, size, False, x.bbox) for x in g]
        blocks.append(Block(box, join_lines(texts), texts, spans))
    return blocks


# --- figure regions ----------------------------------------------------------------------------


def _ink(pix: pymupdf.Pixmap) -> tuple[np.ndarray, np.ndarray]:
    """Ink mask of a page render at REGION_DPI, and the darkest channel it was cut from."""
    arr = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)
    arr = arr[:, : pix.width * pix.n].reshape(pix.height, pix.width, pix.n)
    f = REGION_DPI / OCR_DPI
    size = (max(int(pix.width * f), 1), max(int(pix.height * f), 1))
    small = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)  # first: 4x fewer pixels
    # The darkest channel: pale pink stains and yellowed paper differ in it from white.
    gray = (
        np.minimum(np.minimum(small[..., 0], small[..., 1]), small[..., 2]) if pix.n >= 3 else small
    )
    paper = float(np.percentile(gray, 98))
    near = gray[gray >= paper - INK_MAX].astype(np.float32)
    # Robust spread (median absolute deviation): pale pictures must not widen it.
    noise = 1.4826 * float(np.median(np.abs(near - paper))) if near.size else 0.0
    drop = min(max(4.0 * noise + 4.0, INK_MIN), INK_MAX)
    return (gray < paper - drop).astype(np.uint8), gray


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Connected components (x, y, w, h, pixels) of a mask closed over 1-2 px gaps."""
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    return [tuple(int(v) for v in stats[i]) for i in range(1, n)]  # type: ignore[misc]


def _flat(gray: np.ndarray) -> bool:
    """Whether a region is mostly one tone (a shaded box or a filled diagram, whose text
    is real) rather than a photograph."""
    if gray.size == 0:
        return True
    counts = np.bincount((gray // 8).ravel(), minlength=32)
    return counts.max() > FLAT_SHARE * gray.size


def engine() -> str:
    """Which Tesseract reads the pages: "tesseract", the installed program, when there is one,
    else "pymupdf", the copy built into PyMuPDF (`Pixmap.pdfocr_tobytes`). Both write a PDF
    page with the text layer, read the same way. The program is preferred for speed: PyMuPDF's
    copy is built without Tesseract's SIMD kernels and took 2.3 times the CPU (3.8 s against
    1.65 s on one dense generated page, 1.3 against 0.9 s a page on average); the
    `MMSKIN_OCR_ENGINE` environment variable ("tesseract" or "pymupdf") overrides the choice.
    """
    wanted = os.environ.get("MMSKIN_OCR_ENGINE", "").strip().lower()
    if wanted in ("tesseract", "pymupdf"):
        return wanted
    return "tesseract" if shutil.which("tesseract") else "pymupdf"


def recognise(pix: pymupdf.Pixmap) -> bytes:
    """A one-page PDF holding Tesseract's text layer for `pix` (its dpi set)."""
    if engine() == "pymupdf":
        return pix.pdfocr_tobytes(language="eng", tessdata=tessdata())
    exe = shutil.which("tesseract")
    if exe is None:
        raise PdfError(
            "ocr_unavailable", "MMSKIN_OCR_ENGINE=tesseract, but no tesseract is on PATH."
        )
    env = dict(os.environ)
    # One page is one core's work: parallelism comes from the chunk workers, and OpenMP
    # threads per page would oversubscribe them.
    env.setdefault("OMP_THREAD_LIMIT", "1")
    with tempfile.TemporaryDirectory(prefix="mmskin-ocr-") as tmp:
        src = Path(tmp, "page.pnm")  # uncompressed: nothing to encode or decode
        pix.save(src)
        cmd = [exe, str(src), str(Path(tmp, "page")), "--dpi", str(OCR_DPI), "-l", "eng"]
        cmd += ["--tessdata-dir", tessdata(), "-c", "textonly_pdf=1", "pdf"]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=OCR_TIMEOUT, env=env, check=False
            )
        except (OSError, subprocess.SubprocessError):
            done = None
        out = Path(tmp, "page.pdf")
        if done is None or done.returncode != 0 or not out.is_file():
            # A broken program must not lose the page: PyMuPDF's copy reads it instead.
            return pix.pdfocr_tobytes(language="eng", tessdata=tessdata())
        return out.read_bytes()


def ocr_lines(pix: pymupdf.Pixmap, ink: np.ndarray, gray: np.ndarray, scale_pt: float) -> dict:
    """Tesseract's reading of the page render, in points of the displayed page, with
    photographs painted white first (in `pix`): their texture is read as words and throws
    Tesseract's line finder off the captions beside them."""
    k = OCR_DPI / REGION_DPI
    for x, y, w, h, count in _components(ink):
        if count < SOLID_FILL * w * h or min(w, h) * scale_pt < MIN_IMAGE_PT:
            continue
        if not _flat(gray[y : y + h, x : x + w]):
            box = (int(x * k), int(y * k), int((x + w) * k) + 1, int((y + h) * k) + 1)
            pix.set_rect(pymupdf.IRect(box) & pix.irect, (255,) * pix.n)
    pix.set_dpi(OCR_DPI, OCR_DPI)
    pdf = pymupdf.open("pdf", recognise(pix))
    try:
        out = pdf[0]
        raw = out.get_text("dict", flags=TEXT_FLAGS)
        zoom = pix.width * 72.0 / OCR_DPI / out.rect.width
    finally:
        pdf.close()
    raw["zoom"] = zoom
    return raw


def _cluster(boxes: list[Box], tol: float) -> list[Box]:
    """Union boxes that lie within `tol` of each other until none do."""
    items = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                if (
                    a[0] - tol < b[2]
                    and b[0] - tol < a[2]
                    and a[1] - tol < b[3]
                    and b[1] - tol < a[3]
                ):
                    items[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    return items


def _figure_sized(box: Box, area: float) -> bool:
    w, h = box[2] - box[0], box[3] - box[1]
    if w < MIN_IMAGE_PT or h < MIN_IMAGE_PT or w * h > FULL_PAGE_FRACTION * area:
        return False
    return not (w > MAX_ASPECT * h or h > MAX_ASPECT * w)


def find_regions(
    ink: np.ndarray, scale: float, lines: list[_Line], frame: pymupdf.Rect, ppi: float
) -> tuple[list[Placement], list[Placement], list[_Line]]:
    """Pictures and line-art clusters on the page image (`ink` at `scale` points a pixel,
    displayed page), and the text lines that are not noise read off a picture."""
    mask = ink.copy()
    h_px, w_px = ink.shape
    for ln in lines:
        x0, y0 = max(int(ln.bbox[0] / scale), 0), max(int(ln.bbox[1] / scale), 0)
        x1 = min(int(np.ceil(ln.bbox[2] / scale)), w_px)
        y1 = min(int(np.ceil(ln.bbox[3] / scale)), h_px)
        cut = ink[y0:y1, x0:x1]
        if cut.size and cut.mean() < PROSE_INK:
            mask[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = 0
    area = frame.width * frame.height
    pictures: list[Box] = []
    pieces: list[Box] = []
    for x, y, w, h, count in _components(mask):
        if w * h < 16:
            continue
        r = pymupdf.Rect(x * scale, y * scale, (x + w) * scale, (y + h) * scale)
        box = _round(r & frame)
        if count >= PICTURE_FILL * w * h and _figure_sized(box, area):
            pictures.append(box)
        else:
            pieces.append(box)
    drawings = [b for b in _cluster(pieces, CLUSTER_PT) if _figure_sized(b, area)]
    drawings = [b for b in drawings if not any(_inside(b, p) > 0.5 for p in pictures)]
    images = [
        Placement(b, 0, round((b[2] - b[0]) * ppi / 72), round((b[3] - b[1]) * ppi / 72))
        for b in pictures
    ]
    vectors = [Placement(b, 0, 0, 0, vector=True) for b in drawings]
    # Tesseract reads words into photographs; only panel letters printed on them are real.
    kept = [
        ln
        for ln in lines
        if is_letters(ln.text) or not any(_inside(ln.bbox, p) > 0.5 for p in pictures)
    ]
    return images, vectors, kept


def _inside(a: Box, b: Box) -> float:
    """The share of box `a` inside box `b`."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    full = (a[2] - a[0]) * (a[3] - a[1])
    return w * h / full if w > 0 and h > 0 and full > 0 else 0.0


def _scan_ppi(page: pymupdf.Page) -> float:
    """Pixels per inch of the page's scan image (for the low-resolution flag of its crops)."""
    best = 0.0
    for info in page.get_image_info(xrefs=False):
        r = pymupdf.Rect(info["bbox"])
        if r.width > 0:
            best = max(best, info["width"] / (r.width / 72.0))
    return best or 150.0


# --- the page reader ---------------------------------------------------------------------------


def read_scanned_page(doc: pymupdf.Document, number: int) -> OcrPage | None:
    """The page as `PageData` read from its image, or None when it is not a scan (the
    born-digital reader then reads it).

    A scan reads upright as displayed, so its reading space is the displayed page.
    """
    page = doc[number - 1]
    if not scan_image(page):
        return None
    matrix = pymupdf.Matrix(page.rotation_matrix)
    turned = page.rotation % 360 != 0
    raw = page.get_text("dict", flags=TEXT_FLAGS)
    own = [ln for b in raw["blocks"] if b.get("type", 0) == 0 for ln in b["lines"]]
    pix = page.get_pixmap(dpi=OCR_DPI, alpha=False)
    ink, gray = _ink(pix)
    frame = page.rect  # the displayed page
    scale = frame.width / ink.shape[1]
    ocr = not usable_text(own)
    if ocr:
        raw = ocr_lines(pix, ink, gray, scale)
        lines = _lines(raw, pymupdf.Matrix(raw["zoom"], raw["zoom"]))
    else:
        lines = _lines(raw, matrix if turned else None)
    images, drawings, lines = find_regions(ink, scale, lines, frame, _scan_ppi(page))
    blocks = build_blocks(lines)
    return OcrPage(
        number,
        frame.width,
        frame.height,
        blocks,
        images,
        "\n\n".join(b.text for b in blocks),
        to_pdf=reading_inverse(matrix),
        drawings=drawings,
        ocr=ocr,
    )


# --- scanned copies, to measure OCR against the born-digital reading -------------------------


def scanned_copy(
    src: str | Path,
    dst: str | Path,
    *,
    dpi: int = 200,
    pages: set[int] | None = None,
    strips: int = 1,
) -> Path:
    """Write an image-only copy of `src`: every page (or the 1-based `pages`) rendered at
    `dpi` and placed as one picture on a page of the same size, as a scanner gives it; other
    pages are copied unchanged (a mixed book). `strips` > 1 stores each picture as that many
    horizontal bands, as PDFium writes scans. The born-digital extraction of `src` is then the
    gold the scan's extraction is measured against: the boxes are the same.
    """
    doc = pymupdf.open(src)
    out = pymupdf.open()
    try:
        for p in doc:
            if pages is not None and p.number + 1 not in pages:
                out.insert_pdf(doc, from_page=p.number, to_page=p.number)
                continue
            pix = p.get_pixmap(dpi=dpi, alpha=False)
            page = out.new_page(width=p.rect.width, height=p.rect.height)
            if strips <= 1:
                page.insert_image(page.rect, pixmap=pix)
                continue
            rows = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)
            cuts = np.linspace(0, pix.height, strips + 1).round().astype(int)
            for top, bottom in itertools.pairwise(cuts):
                data = np.ascontiguousarray(rows[top:bottom, : pix.width * pix.n]).tobytes()
                band = pymupdf.Pixmap(pix.colorspace, pix.width, int(bottom - top), data, False)
                y0 = page.rect.height * top / pix.height
                y1 = page.rect.height * bottom / pix.height
                page.insert_image(pymupdf.Rect(0, y0, page.rect.width, y1), pixmap=band)
        out.save(dst, deflate=True)
    finally:
        out.close()
        doc.close()
    return Path(dst)


# --- carrying a scanned page to the link pass --------------------------------------------------

ORPHAN_KIND = "scanned_page"


def page_orphan(pd: OcrPage) -> dict:
    """What the link pass needs of a scanned page, as JSON (chunk results are stored as JSON
    between the chunk and link tasks): OCR runs once per page, not again for the citations."""
    return {
        "kind": ORPHAN_KIND,
        "page": pd.number,
        "ocr": pd.ocr,
        "size": [pd.width, pd.height],
        "to_pdf": list(pd.to_pdf) if pd.to_pdf is not None else None,
        "blocks": [
            {"bbox": list(b.bbox), "lines": b.lines, "size": b.spans[0].size} for b in pd.blocks
        ],
        "images": [[*p.bbox, p.width_px, p.height_px] for p in pd.images],
        "drawings": [list(p.bbox) for p in pd.drawings],
    }


def page_from_orphan(o: dict) -> OcrPage:
    """The scanned page `page_orphan` recorded."""
    blocks = []
    for b in o["blocks"]:
        lines = b["lines"]
        spans = [Span(t, OCR_FONT, b["size"], False, tuple(b["bbox"])) for t in lines]
        blocks.append(Block(tuple(b["bbox"]), join_lines(lines), lines, spans))
    images = [Placement(tuple(v[:4]), 0, int(v[4]), int(v[5])) for v in o["images"]]
    drawings = [Placement(tuple(v), 0, 0, 0, vector=True) for v in o["drawings"]]
    return OcrPage(
        o["page"],
        o["size"][0],
        o["size"][1],
        blocks,
        images,
        "\n\n".join(b.text for b in blocks),
        to_pdf=pymupdf.Matrix(o["to_pdf"]) if o["to_pdf"] else None,
        drawings=drawings,
        ocr=o["ocr"],
    )


def scanned_pages(orphans: list[dict]) -> dict[int, OcrPage]:
    """Scanned pages recorded among a book's orphans, by page number."""
    return {o["page"]: page_from_orphan(o) for o in orphans if o.get("kind") == ORPHAN_KIND}


__all__ = [
    "OcrPage",
    "build_blocks",
    "find_regions",
    "is_ocr",
    "is_scanned",
    "page_from_orphan",
    "page_orphan",
    "read_scanned_page",
    "scan_image",
    "scanned_copy",
    "scanned_pages",
    "tessdata",
    "usable_text",
]
