"""extract_chunk, link_book and extract_book: the extraction steps chained over pages.

A book is processed in page chunks (so a worker can report progress and a crash loses little),
then one linking pass joins figures split across a page break and gathers citations book-wide.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pymupdf
from PIL import Image

from . import annotate, imagecues
from . import flags as review_flags
from .confidence import assess
from .crop import page_clip
from .errors import PdfError, on_page
from .layout import (
    TEXT_FRAME_WORDS,
    Caption,
    Group,
    Pairing,
    Style,
    absorb_panels,
    complete_pairs,
    drop_tables,
    find_captions,
    group_images,
    is_margin,
    is_panel_letter,
    is_vector,
    join_continued_captions,
    learn_caption_style,
    pair,
    reading_order,
    stack_vector_parts,
    vector_groups,
)
from .layout import panel_letters_in_image as letters_in_image
from .mentions import find_refs
from .model import (
    Box,
    ChunkResult,
    FigureInfo,
    FigureRef,
    LinkResult,
    Mention,
    PageInfo,
    PanelInfo,
)
from .ocr import is_ocr, is_scanned, page_orphan, read_scanned_page, scanned_pages
from .panels import split_composite
from .reader import (
    Block,
    PageData,
    Placement,
    Sections,
    apply_hyphenation,
    check_images,
    mark_running_heads,
    read_blocks,
    read_drawings,
    read_images,
    reading_inverse,
    reading_matrix,
    reading_rect,
    to_pdf_box,
)
from .validate import check_pages, open_pdf

ORPHAN_CAPTION_SCORE = 1.5  # an unpaired label block scoring this much is a caption, not prose
LOW_PPI = 100.0


def _box(r: Box | pymupdf.Rect) -> Box:
    return tuple(round(float(v), 2) for v in tuple(r))  # type: ignore[return-value]


def render(page: pymupdf.Page, box: Box, dpi: int) -> bytes:
    """Crop the page region as PNG; MuPDF's PNG writer is deterministic for equal input."""
    return render_pixmap(page, box, dpi).tobytes("png")


def render_pixmap(page: pymupdf.Page, box: Box, dpi: int) -> pymupdf.Pixmap:
    """The page region (a box in PyMuPDF's page coordinates) as an RGB pixmap, turned as the
    page is displayed."""
    clip = page_clip(page, box)
    if clip is None:
        raise ValueError(f"box {list(box)} lies outside page {page.number + 1}")
    return page.get_pixmap(clip=clip, dpi=dpi, alpha=False)


def read_page(doc: pymupdf.Document, number: int, checked: dict[int, str | None]) -> PageData:
    """Page reader step: blocks, usable image placements (decoded once) and plain text, in the
    page's reading space (upright as its text reads; see `reading_matrix`)."""
    with on_page(number):
        return _read_page(doc, number, checked)


def _read_page(doc: pymupdf.Document, number: int, checked: dict[int, str | None]) -> PageData:
    scanned = read_scanned_page(doc, number)  # a scan: text and figures from its image
    if scanned is not None:
        return scanned
    page = doc[number - 1]
    matrix = reading_matrix(page)
    blocks = read_blocks(page, matrix)
    images = read_images(page, matrix=matrix)
    check_images(doc, number, images, checked)
    text = "\n\n".join(b.text for b in blocks)
    frame = reading_rect(page, matrix)
    to_pdf = reading_inverse(matrix)
    prose = [b.bbox for b in blocks if len(b.text.split()) > TEXT_FRAME_WORDS]
    marks: list[Box] = []
    drawings = read_drawings(page, matrix, prose, marks)
    return PageData(
        number,
        frame.width,
        frame.height,
        blocks,
        images,
        text,
        to_pdf=to_pdf,
        drawings=drawings,
        marks=marks,
    )


def build_figure(
    doc: pymupdf.Document,
    pd: PageData,
    group: Group,
    caption: Caption,
    section: list[str],
    dpi: int,
    position: str = "below",
    caption_page: int | None = None,
    caption_to_pdf: pymupdf.Matrix | None = None,
) -> FigureInfo:
    """Panel splitter and annotator: letters, sub-captions, crops, modality and demographics.

    Geometry comes in the page's reading space and leaves in PyMuPDF's page coordinates; a
    caption from another page brings that page's `caption_to_pdf`.
    """
    page = doc[pd.number - 1]
    cap_text = caption.text
    _, subs = annotate.split_subcaptions(cap_text)
    parsed = annotate.parse_label(cap_text)
    body = cap_text[parsed[1] :].strip() if parsed else cap_text
    flags: list[str] = []
    first = group.panels[0]
    if len(group.panels) == 1 and len(subs) >= 2 and first.xref > 0 and first.tiles == 1:
        group = _split_group(doc, group, len(subs), flags)
    n = len(group.panels)
    boxes = [p.bbox for p in group.panels]
    if n == 1:
        letters: list[str | None] = [None]
    else:
        printed = letters_in_image(group, pd)
        if all(printed) and len(set(printed)) == n:
            letters = printed
        elif len(subs) >= n:
            letters = sorted(subs)[:n]
        else:
            letters = [chr(ord("a") + i) for i in range(n)]
            flags.append("panel_letters_inferred")
        if subs and len(subs) != n:
            flags.append("letters_mismatch")
    fig_mod, fig_conf = annotate.modality_from_text(body)
    drawing = is_vector(group)
    if drawing and fig_mod is None:
        fig_mod, fig_conf = "other", 0.8  # a diagram, unless its caption names a modality
    panels: list[PanelInfo] = []
    reading_boxes = boxes
    boxes = [pd.pdf_box(b) for b in boxes]
    for i, (pl, box, letter) in enumerate(zip(group.panels, boxes, letters, strict=True)):
        pix = render_pixmap(page, box, dpi)
        png = pix.tobytes("png")
        sub = subs.get(letter, "") if letter else body
        mod, conf = annotate.modality_from_text(sub) if letter else (fig_mod, fig_conf)
        if mod is None and n > 1 and fig_mod and len(subs) == 0:
            mod, conf = fig_mod, fig_conf * 0.8
        panel_flags: list[str] = []
        version, best = "", mod or ""
        if not drawing:
            small = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
            cue = imagecues.suggest(small, mod, conf)
            mod, conf, version, best = cue.modality, cue.confidence, cue.model_version, cue.best
            panel_flags = review_flags.panel_flags(small, reading_boxes[i], pd.marks, best)
            flags.extend(panel_flags)
        panels.append(
            PanelInfo(
                i,
                letter,
                box,
                sub,
                png,
                mod,
                round(conf, 3),
                panel_flags,
                modality_model=version,
                modality_best=best,
            )
        )
        if not pl.vector and _ppi(pl) < LOW_PPI:
            flags.append("low_resolution")
    mods = {p.modality for p in panels}
    modality = panels[0].modality if len(mods) == 1 else "mixed"
    confidence = min(p.modality_confidence for p in panels)
    fig_box = pd.pdf_box(group.bbox)
    other_page = caption_page is not None and caption_page != pd.number
    cap_matrix = caption_to_pdf if other_page else pd.to_pdf
    image_png = panels[0].image_png if n == 1 else render(page, fig_box, dpi)
    age, sex = annotate.age_sex(cap_text)
    if position != "below":
        flags.append(f"caption_{position}")
    if caption_page and caption_page != pd.number:
        flags.append("caption_on_other_page")
    fig = FigureInfo(
        label=caption.label,
        page=pd.number,
        bbox=_box(fig_box),
        caption=cap_text,
        caption_bbox=_box(to_pdf_box(caption.bbox, cap_matrix)),
        image_png=image_png,
        panels=panels,
        modality=modality,
        modality_confidence=round(confidence, 3),
        section=section,
        diagnosis=annotate.diagnosis(cap_text, section),
        age=age,
        sex=sex,
        flags=sorted(set(flags)),
        mentions=[],
        caption_page=caption_page or pd.number,
    )
    # Confidence and doubts (may fall back to one whole-figure panel when unsure).
    tiles = max(p.tiles for p in group.panels)
    return assess(fig, ocr=is_ocr(pd), tiles=tiles, drawing=drawing)


def _split_group(doc: pymupdf.Document, group: Group, wanted: int, flags: list[str]) -> Group:
    """Cut a lone composite image into the panels its caption letters promise."""
    pl = group.panels[0]
    boxes = split_composite(doc, pl.xref, pl.bbox)
    if len(boxes) != wanted:
        flags.append("composite_not_split")
        return group
    order = reading_order(boxes)
    scale = pl.width_px / max(pl.bbox[2] - pl.bbox[0], 1e-6)
    panels = [
        Placement(boxes[i], pl.xref, int((boxes[i][2] - boxes[i][0]) * scale), pl.height_px)
        for i in order
    ]
    flags.append("split_from_composite")
    return Group(panels, group.bbox)


def _ppi(pl: Placement) -> float:
    w_in = (pl.bbox[2] - pl.bbox[0]) / 72.0
    return pl.width_px / w_in if w_in > 0 else 0.0


def _page_section(sections: Sections, pd: PageData) -> list[str]:
    body = [b.bbox for b in pd.blocks if not is_margin(b, pd)]
    if not body:
        return sections.path_at(pd.number, 0.0, pd.blocks)
    first = min(body, key=lambda b: (b[0] >= pd.width / 2 - 5, b[1]))
    return sections.path_at(pd.number, first[1] + 1, pd.blocks, x0=first[0])


def _mentions_with_y(
    pd: PageData, caption_blocks: set[int]
) -> dict[str, list[tuple[Mention, Box]]]:
    """Citations on a page by normalised label, with the citing block's box (for its section)."""
    out: dict[str, list[tuple[Mention, Box]]] = {}
    for b in pd.blocks:
        if id(b) in caption_blocks or is_margin(b, pd):
            continue
        for label in find_refs(b.text, skip_own_label=True):
            out.setdefault(label, []).append((Mention(pd.number, b.text), b.bbox))
    return out


def _caption_letters(p: Pairing) -> int:
    """How many panels a pairing's caption names with letters."""
    return len(annotate.split_subcaptions(p.caption.text)[1])


def _analyse_page(pd: PageData, style: Style | None = None):
    groups, _ = drop_tables(pd, group_images(pd) + vector_groups(pd))
    caps = find_captions(pd, style)
    pairs, left_groups, left_caps = pair(groups, caps, pd)
    left_groups = stack_vector_parts(pairs, left_groups, pd, caps)
    # A drawing is a figure only when a caption was assigned to it; the rest is decoration.
    left_groups = [g for g in left_groups if not is_vector(g)]
    left_groups = absorb_panels(pairs, left_groups, pd, _caption_letters)
    pairs, freed = complete_pairs(pairs, pd, _caption_letters)
    left_caps = sorted(left_caps + freed, key=lambda c: (c.bbox[1], c.bbox[0]))
    caption_like = [c for c in left_caps if c.score >= ORPHAN_CAPTION_SCORE]
    cap_ids = {id(b) for p in pairs for b in p.caption.blocks}
    cap_ids |= {id(b) for c in caption_like for b in c.blocks}
    return pairs, left_groups, caption_like, cap_ids


def _section_from_citation(f: FigureInfo, cited: list[str] | None) -> None:
    """A figure floated past the next heading belongs to the section that first cites it,
    when that citation is close by (within two pages)."""
    first = f.mentions[0] if f.mentions else None
    if cited and first and abs(first.page - f.page) <= 2:
        f.section = cited


def _check_range(doc: pymupdf.Document, first: int, last: int) -> None:
    if not 1 <= first <= last <= doc.page_count:
        raise ValueError(f"page range {first}-{last} outside 1-{doc.page_count}")


def extract_chunk(
    path: str | Path, first_page: int, last_page: int, *, dpi: int = 150
) -> ChunkResult:
    """Extract pages first_page..last_page (1-based, inclusive) into pages, figures, orphans.

    Figures carry the mentions found inside the chunk only; `link_book` collects them book-wide.
    """
    doc = open_pdf(path)
    try:
        check_pages(doc, None)
        _check_range(doc, first_page, last_page)
        return _extract_range(doc, Sections(doc), {}, first_page, last_page, dpi)
    finally:
        doc.close()


def _extract_range(
    doc: pymupdf.Document,
    sections: Sections,
    checked: dict[int, str | None],
    first_page: int,
    last_page: int,
    dpi: int,
) -> ChunkResult:
    """One chunk on an open document; `sections` and `checked` (decoded image streams) may be
    shared by consecutive chunks of one book, so neither is recomputed per chunk."""
    pages: list[PageInfo] = []
    figures: list[FigureInfo] = []
    orphans: list[dict] = []
    mentions: dict[str, list[Mention]] = {}
    cited_in: dict[str, list[str]] = {}
    datas = [read_page(doc, n, checked) for n in range(first_page, last_page + 1)]
    apply_hyphenation(datas)
    mark_running_heads(datas)
    style = learn_caption_style([d for d in datas if not is_scanned(d)])
    for pd in datas:
        number = pd.number
        pd.section = _page_section(sections, pd)
        pages.append(PageInfo(number, *pd.pdf_size, pd.text, pd.section))
        if is_scanned(pd):  # OCR has no fonts: no caption style; keep its text for link_book
            orphans.append(page_orphan(pd))
        pairs, left_groups, caption_like, cap_ids = _analyse_page(
            pd, None if is_scanned(pd) else style
        )
        for p in pairs:
            section = sections.path_at(number, p.group.bbox[1], pd.blocks, x0=p.group.bbox[0])
            with on_page(number):
                figures.append(build_figure(doc, pd, p.group, p.caption, section, dpi, p.position))
        for g in left_groups:
            orphans.append(_image_orphan(number, g, pd))
        for c in caption_like:
            orphans.append(_caption_orphan(number, c, pd))
        for label, ms in _mentions_with_y(pd, cap_ids).items():
            mentions.setdefault(label, []).extend(m for m, _ in ms)
            if label not in cited_in:
                box = ms[0][1]
                cited_in[label] = sections.path_at(number, box[1] + 1, pd.blocks, x0=box[0])
    for f in figures:
        key = annotate.norm_label(f.label)
        f.mentions = list(mentions.get(key, []))
        _section_from_citation(f, cited_in.get(key))
    orphans = join_continued_captions(figures, orphans)
    return ChunkResult(pages, figures, orphans)


def _edges(box: Box, pd: PageData) -> dict[str, bool]:
    """Whether nothing but running heads lies above / below `box` in its column."""
    above = below = False
    for b in pd.blocks:
        if is_margin(b, pd) or is_panel_letter(b) or b.bbox == tuple(box):
            continue
        if b.bbox[2] <= box[0] or b.bbox[0] >= box[2]:
            continue
        if b.bbox[3] <= box[1] + 1:
            above = True
        elif b.bbox[1] >= box[3] - 1:
            below = True
    return {"first_on_page": not above, "last_on_page": not below}


def _image_orphan(number: int, g: Group, pd: PageData) -> dict:
    return {
        "kind": "image",
        "page": number,
        **_edges(g.bbox, pd),
        "bbox": list(g.bbox),
        "panels": [list(p.bbox) for p in g.panels],
        "xrefs": [p.xref for p in g.panels],
        "pixels": [[p.width_px, p.height_px] for p in g.panels],
    }


def _caption_orphan(number: int, c: Caption, pd: PageData) -> dict:
    return {
        "kind": "caption",
        "page": number,
        "bbox": list(c.bbox),
        "label": c.label,
        "text": c.text,
        "score": c.score,
        "font": list(c.font),
        **_edges(c.bbox, pd),
    }


def _orphan_group(o: dict) -> Group:
    panels = [
        Placement(tuple(b), x, px[0], px[1])
        for b, x, px in zip(o["panels"], o["xrefs"], o["pixels"], strict=True)
    ]
    return Group(panels, tuple(o["bbox"]))


def _orphan_caption(o: dict) -> Caption:
    block = Block(tuple(o["bbox"]), o["text"], [o["text"]], [])
    return Caption(o["label"], o["text"], tuple(o["bbox"]), [block], o["score"], tuple(o["font"]))


def link_book(
    path: str | Path, figures: list[FigureRef], orphans: list[dict], *, dpi: int = 150
) -> LinkResult:
    """Join image/caption orphans split by a page break and collect citations book-wide."""
    doc = open_pdf(path)
    try:
        check_pages(doc, None)
        known = {annotate.norm_label(f.label): f.label for f in figures}
        images = sorted(
            (o for o in orphans if o.get("kind") == "image"),
            key=lambda o: (o["page"], o["bbox"][1]),
        )
        captions = sorted(
            (o for o in orphans if o.get("kind") == "caption"),
            key=lambda o: (o["page"], o["bbox"][1]),
        )
        used_images: set[int] = set()
        used_caps: set[int] = set()
        joined: list[FigureInfo] = []
        sections = Sections(doc)
        checked: dict[int, str | None] = {}
        scans = scanned_pages(orphans)  # read once by the chunks, never OCR'd twice
        options = []
        cap_pages = {c["page"] for c in captions}
        img_pages = {o["page"] for o in images}
        for ci, cap in enumerate(captions):
            if annotate.norm_label(cap["label"]) in known:
                continue
            for ii, img in enumerate(images):
                # Image at the foot of page N and caption heading page N+1, or the reverse
                # (caption set above its image, split by the page break).
                if img["page"] == cap["page"] - 1:
                    rank = (0 if img.get("last_on_page") and cap.get("first_on_page") else 2, 0)
                elif img["page"] == cap["page"] + 1:
                    rank = (1 if cap.get("last_on_page") and img.get("first_on_page") else 3, 0)
                else:
                    continue
                if rank[0] >= 2 and (img["page"] in cap_pages or cap["page"] in img_pages):
                    # Neither at a page edge, and each page holds an unpaired part of its own:
                    # a picture and caption the page pairer missed, not one figure split by
                    # the break. Joining them would pair every page with the next one's.
                    continue
                options.append((rank, ci, ii))
        options.sort()
        for _, ci, ii in options:
            cap = captions[ci]
            key = annotate.norm_label(cap["label"])
            if ci in used_caps or ii in used_images or key in known:
                continue
            used_caps.add(ci)
            used_images.add(ii)
            img = images[ii]
            pd = scans.get(img["page"]) or read_page(doc, img["page"], checked)
            caption = _orphan_caption(cap)
            cap_to_pdf = reading_inverse(reading_matrix(doc[cap["page"] - 1]))
            position = "below" if img["page"] < cap["page"] else "above"
            # Panels set wider apart than the merge gap are separate orphans on that page.
            pairing = Pairing(_orphan_group(img), caption, position)
            rest = {
                j: _orphan_group(o)
                for j, o in enumerate(images)
                if j not in used_images and o["page"] == img["page"]
            }
            left = absorb_panels([pairing], list(rest.values()), pd, _caption_letters)
            used_images.update(j for j, g in rest.items() if g not in left)
            group = pairing.group
            section = sections.path_at(img["page"], group.bbox[1], x0=group.bbox[0])
            fig = build_figure(
                doc,
                pd,
                group,
                caption,
                section,
                dpi,
                position,
                caption_page=cap["page"],
                caption_to_pdf=cap_to_pdf,
            )
            joined.append(fig)
            known[key] = fig.label
        mentions: dict[str, list[Mention]] = {}
        cited_in: dict[str, list[str]] = {}
        datas = []
        for number in range(1, doc.page_count + 1):
            if number in scans:
                datas.append(scans[number])
                continue
            page = doc[number - 1]
            matrix = reading_matrix(page)
            frame = reading_rect(page, matrix)
            datas.append(
                PageData(
                    number,
                    frame.width,
                    frame.height,
                    read_blocks(page, matrix),
                    read_images(page, xrefs=False, matrix=matrix),
                    "",
                    to_pdf=reading_inverse(matrix),
                )
            )
        apply_hyphenation(datas)
        mark_running_heads(datas)
        style = learn_caption_style([d for d in datas if not is_scanned(d)])
        for pd in datas:
            number = pd.number
            _, _, _, cap_ids = _analyse_page(pd, None if is_scanned(pd) else style)
            for label, ms in _mentions_with_y(pd, cap_ids).items():
                key = known.get(label, label)
                mentions.setdefault(key, []).extend(m for m, _ in ms)
                if key not in cited_in:
                    box = ms[0][1]
                    cited_in[key] = sections.path_at(number, box[1] + 1, pd.blocks, x0=box[0])
        for f in joined:
            f.mentions = list(mentions.get(f.label, []))
        return LinkResult(joined, mentions, cited_in)
    finally:
        doc.close()


def extract_book(
    path: str | Path,
    *,
    dpi: int = 150,
    workers: int = 1,
    chunk_pages: int = 40,
    on_figures: Callable[[list[FigureInfo]], None] | None = None,
) -> list[FigureInfo]:
    """Whole book in one call: chunks, then the link pass; mentions filled in.

    The book is read `chunk_pages` pages at a time, so only one chunk's pages are held in
    memory. With `workers` > 1 the chunks run in that many processes, as the platform's task
    queue would run them. Do not ask for workers inside a daemonic process (a Celery prefork
    child): queue `extract_chunk` tasks there instead.

    The returned figures hold their crops as PNG bytes, which is most of the memory a long book
    takes. `on_figures(figures)` is called with each chunk's figures (and then with those the
    link pass joins across page breaks) as soon as they exist, before mentions are attached: a
    caller that writes the crops out there and empties `image_png` streams a book of any length
    through bounded memory (the CLI does).
    """
    doc = open_pdf(path)
    try:
        check_pages(doc, None)
        n = doc.page_count
        ranges = [(a, min(a + chunk_pages - 1, n)) for a in range(1, n + 1, chunk_pages)]
        found: list[FigureInfo] = []
        orphans: list[dict] = []

        def take(chunk: ChunkResult) -> None:
            if on_figures is not None:
                on_figures(chunk.figures)
            found.extend(chunk.figures)
            orphans.extend(chunk.orphans)

        if workers <= 1:
            sections = Sections(doc)
            checked: dict[int, str | None] = {}
            for a, b in ranges:
                take(_extract_range(doc, sections, checked, a, b, dpi))
                # MuPDF caches fonts and images of pages already read (up to 256 MB) on the
                # open document; a chunk never goes back, so the cache only costs memory.
                pymupdf.TOOLS.store_shrink(100)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(extract_chunk, path, a, b, dpi=dpi) for a, b in ranges]
                for f in futures:
                    take(f.result())
    finally:
        doc.close()
    orphans = join_continued_captions(found, orphans)  # a caption continued across chunks
    link = link_book(path, [FigureRef(f.label, f.page) for f in found], orphans, dpi=dpi)
    if on_figures is not None:
        on_figures(link.figures)
    figures = found + link.figures
    for f in figures:
        f.mentions = list(link.mentions.get(f.label, []))
        _section_from_citation(f, link.sections.get(f.label))
    figures.sort(key=lambda f: (f.page, f.bbox[1], f.bbox[0]))
    return figures


__all__ = ["PdfError", "extract_book", "extract_chunk", "link_book"]
