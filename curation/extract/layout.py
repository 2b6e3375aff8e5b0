"""Candidate finder, caption finder and pairer.

Which images form one figure, and which text block is its caption.

Geometry only, on the plain blocks and placements from `reader`; no rendering happens here.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field

from .annotate import continuation, join_continuation, norm_label, parse_label, split_subcaptions
from .model import Box, FigureInfo
from .reader import Block, PageData, Placement, Span

MERGE_GAP = 14.0  # points between panels of one figure (column gutters are wider)
ALIGN = 3.0  # panels in a row share a top or bottom edge within this many points
LOOSE_GAP = 26.0  # gutter allowed between aligned panels of like height
LOOSE_HEIGHT = 0.6  # the shorter of two such panels is at least this share of the taller
CAPTION_GAP = 60.0  # farthest a caption may sit from its image
MARGIN_BAND = 50.0  # running heads and folios live within this band of the page edge
PANEL_LETTER = re.compile(r"^\(?([A-Ha-h])[).]?$")


@dataclass
class Group:
    """Adjacent placements that make up one figure, in reading order."""

    panels: list[Placement]
    bbox: Box


@dataclass
class Caption:
    label: str
    text: str
    bbox: Box
    blocks: list[Block]
    score: float
    font: tuple[str, float, bool]
    at_top: bool = False
    at_bottom: bool = False
    notes: list[str] = field(default_factory=list)


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def intersects(a: Box, b: Box, pad: float = 0.0) -> bool:
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def reading_order(boxes: list[Box]) -> list[int]:
    """Indices of boxes row by row (rows share vertical extent), left to right within a row."""
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    rows: list[list[int]] = []
    for i in order:
        b = boxes[i]
        for row in rows:
            r = boxes[row[0]]
            if overlap(b[1], b[3], r[1], r[3]) > 0.5 * min(b[3] - b[1], r[3] - r[1]):
                row.append(i)
                break
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: boxes[j][0])]


def is_margin(block: Block, page: PageData) -> bool:
    """A running head, footer or folio: in the edge band, or found so by the reader."""
    return (
        block.furniture or block.bbox[3] < MARGIN_BAND or block.bbox[1] > page.height - MARGIN_BAND
    )


def is_panel_letter(block: Block) -> bool:
    """A block of nothing but panel letters ("a", "a b c" when they share a baseline)."""
    tokens = block.text.split()
    return 0 < len(tokens) <= 8 and all(PANEL_LETTER.match(t) for t in tokens)


def body_size(page: PageData) -> float:
    """The most common font size on the page, weighted by characters: the body text size."""
    sizes: Counter[float] = Counter()
    for b in page.blocks:
        for s in b.spans:
            sizes[round(s.size, 1)] += len(s.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _gap_has_text(gap: Box, blocks: list[Block]) -> bool:
    """True when real text (not a panel letter) lies in the gutter between two images."""
    for b in blocks:
        if not intersects(gap, b.bbox):
            continue
        for s in b.spans:
            t = s.text.strip()
            if t and not PANEL_LETTER.match(t) and intersects(gap, s.bbox):
                return True
    return False


def group_images(page: PageData) -> list[Group]:
    """Merge placements that sit side by side or stacked with only a gutter between them."""
    imgs = page.images
    parent = list(range(len(imgs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    loose: set[tuple[int, int]] = set()  # joins across a gutter wider than MERGE_GAP
    joins: list[tuple[int, int]] = []
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            a, b = imgs[i].bbox, imgs[j].bbox
            join = intersects(a, b, 1.0)
            if not join:
                v = overlap(a[1], a[3], b[1], b[3])
                h = overlap(a[0], a[2], b[0], b[2])
                # Panels of one figure share an edge line; figures in neighbouring columns
                # rarely do, and sit a column gutter apart.
                row = abs(a[1] - b[1]) < ALIGN or abs(a[3] - b[3]) < ALIGN
                col = abs(a[0] - b[0]) < ALIGN or abs(a[2] - b[2]) < ALIGN
                # A regular grid (equal, aligned panels) tolerates a wider gutter; two figures
                # that share a row this way are split again by their own captions in `pair`.
                same = (
                    abs((a[2] - a[0]) - (b[2] - b[0])) < 2
                    and abs((a[3] - a[1]) - (b[3] - b[1])) < 2
                )
                # Only side by side: two stacked figures, one captioned above and the next
                # below, would look like a grid; `absorb_panels` joins rows via the letters.
                exact = abs(a[1] - b[1]) < 1.0 and abs(a[3] - b[3]) < 1.0
                # Pictures of one figure set a little wider apart (10-30 pt, room for their
                # sub-captions) share one edge line and are of like height; a second figure
                # in the next column is split off again by `_undo_loose_joins` (its caption
                # lies inside the union) or by `split_by_captions` (captions side by side).
                ha, hb = a[3] - a[1], b[3] - b[1]
                alike = min(ha, hb) >= LOOSE_HEIGHT * max(ha, hb)
                gap_r = LOOSE_GAP if (same and exact) or alike else 0
                if row and v > 0.5 * min(a[3] - a[1], b[3] - b[1]) and -h <= max(MERGE_GAP, gap_r):
                    gap = (min(a[2], b[2]), max(a[1], b[1]), max(a[0], b[0]), min(a[3], b[3]))
                    join = not _gap_has_text(gap, page.blocks)
                    if join and -h > MERGE_GAP:
                        loose.add((i, j))
                elif col and h > 0.5 * min(a[2] - a[0], b[2] - b[0]) and -v <= MERGE_GAP:
                    gap = (max(a[0], b[0]), min(a[3], b[3]), min(a[2], b[2]), max(a[1], b[1]))
                    join = not _gap_has_text(gap, page.blocks)
            if join:
                joins.append((i, j))
                parent[find(i)] = find(j)
    found: dict[int, list[int]] = {}
    for i in range(len(imgs)):
        found.setdefault(find(i), []).append(i)
    clusters = list(found.values())
    if loose:
        clusters = _undo_loose_joins(clusters, joins, loose, imgs, page)
    groups = []
    for idx in clusters:
        members = [imgs[i] for i in idx]
        order = reading_order([m.bbox for m in members])
        panels = [members[i] for i in order]
        box = panels[0].bbox
        for p in panels[1:]:
            box = union(box, p.bbox)
        groups.append(Group(panels, box))
    groups.sort(key=lambda g: (g.bbox[1], g.bbox[0]))
    return groups


def _undo_loose_joins(
    clusters: list[list[int]],
    joins: list[tuple[int, int]],
    loose: set[tuple[int, int]],
    imgs: list[Placement],
    page: PageData,
) -> list[list[int]]:
    """Re-cluster without the wide-gutter joins any cluster whose box holds real text outside
    its panels: equal, aligned pictures in two neighbouring columns (a narrow column gutter)
    are two figures, and the caption under the shorter one lies inside their union."""
    out: list[list[int]] = []
    for idx in clusters:
        members = set(idx)
        if len(idx) < 2 or not any(i in members and j in members for i, j in loose):
            out.append(idx)
            continue
        box = imgs[idx[0]].bbox
        for i in idx[1:]:
            box = union(box, imgs[i].bbox)
        if not _text_outside_panels(box, [imgs[i].bbox for i in idx], page):
            out.append(idx)
            continue
        strict = [(i, j) for i, j in joins if i in members and j in members and (i, j) not in loose]
        out.extend(_components(idx, strict))
    return out


def _components(nodes: list[int], edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of `nodes` under `edges`, each in the nodes' order."""
    parent = {i: i for i in nodes}

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in edges:
        parent[find(i)] = find(j)
    parts: dict[int, list[int]] = {}
    for i in nodes:
        parts.setdefault(find(i), []).append(i)
    return list(parts.values())


def _text_outside_panels(box: Box, panels: list[Box], page: PageData) -> bool:
    """Whether real text (not a panel letter) lies inside `box` but on none of its panels."""
    for b in page.blocks:
        if not intersects(box, b.bbox) or is_panel_letter(b):
            continue
        for s in b.spans:
            t = s.text.strip()
            if not t or PANEL_LETTER.match(t):
                continue
            cx, cy = (s.bbox[0] + s.bbox[2]) / 2, (s.bbox[1] + s.bbox[3]) / 2
            inside_box = box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
            on_panel = any(
                p[0] - 2 <= cx <= p[2] + 2 and p[1] - 2 <= cy <= p[3] + 2 for p in panels
            )
            if inside_box and not on_panel:
                return True
    return False


TEXT_FRAME_WORDS = 12  # a block this long inside a drawing is prose: the drawing frames text
LABEL_WORDS = 6  # longest text inside a drawing taken as one of its labels
VECTOR_PENALTY = 6.0  # a raster group at the same distance from a caption takes it first


def is_vector(group: Group) -> bool:
    return any(p.vector for p in group.panels)


def vector_groups(page: PageData) -> list[Group]:
    """Vector drawing clusters that could be a figure, each grown by the short labels set on
    it. None is a figure yet: `pair` keeps those a caption is assigned to, so rules, header
    bars, boxes around text and table rulings (which have none) are dropped.

    Clusters in the running-head band, on a raster image (frames, arrows drawn on a photo) or
    framing prose are dropped here.
    """
    out = []
    for d in page.drawings:
        box = d.bbox
        if box[3] < MARGIN_BAND or box[1] > page.height - MARGIN_BAND:
            continue
        if any(_covered(box, im.bbox) > 0.2 for im in page.images):
            continue
        box = _outside_caption(box, page)
        prose = False
        grown = box
        for b in page.blocks:
            inside = _covered(b.bbox, box)
            if inside <= 0.5:
                continue
            words = len(b.text.split())
            if words > TEXT_FRAME_WORDS:
                prose = True
                break
            if words <= LABEL_WORDS and not parse_label(b.text):
                grown = union(grown, b.bbox)
        if prose:
            continue
        pl = Placement(grown, 0, 0, 0, vector=True)
        out.append(Group([pl], grown))
    return out


def _outside_caption(box: Box, page: PageData) -> Box:
    """A drawing framed together with its caption (a rule box around figure and caption, as
    BMC and Springer set them) ends where the caption starts: the part of the box on the far
    side of a label block inside it."""
    for b in page.blocks:
        if not parse_label(b.text) or _covered(b.bbox, box) <= 0.5:
            continue
        cy = (b.bbox[1] + b.bbox[3]) / 2
        if cy > (box[1] + box[3]) / 2:
            box = (box[0], box[1], box[2], min(box[3], b.bbox[1] - 0.5))
        else:
            box = (box[0], max(box[1], b.bbox[3] + 0.5), box[2], box[3])
    return box


def _covered(a: Box, b: Box) -> float:
    """The share of box `a` that lies inside box `b`."""
    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    area = (a[2] - a[0]) * (a[3] - a[1])
    if w <= 0 or h <= 0 or area <= 0:
        return 0.0
    return w * h / area


TABLE_START = re.compile(r"^\s*(?:Table|TABLE|Tab\.)\s*[A-Z]?\d")
Style = tuple[str, float]


# A second caption inside one text block: after a sentence end, a label followed by its
# punctuation or a capital ("... on the shin. Figure 4. Dermoscopy ...").
SHARED_LABEL = re.compile(
    r"(?<=[.!?)\]])\s+(?=(?:Fig(?:ure)?\.?|FIG(?:URE)?\.?)\s*\d+(?:[.\-\u2013]\d+)*(?:[.:|]\s|\s+[A-Z]))"
)


def split_shared_captions(page: PageData) -> None:
    """Split, in place, text blocks that hold two captions ("Figure 3. A plaque on the shin.
    Figure 4. Dermoscopy of the same plaque."): side-by-side figures whose captions share a
    line, or stacked ones MuPDF read as one block. Each part gets the box of its own spans,
    a span cut at the label shared out by characters. Idempotent."""
    out: list[Block] = []
    for b in page.blocks:
        out.extend(_split_block(b))
    page.blocks[:] = out


def _split_block(b: Block) -> list[Block]:
    first = parse_label(b.text)
    if not first:
        return [b]
    for m in SHARED_LABEL.finditer(b.text, first[1]):
        second = parse_label(b.text[m.end() :])
        if not second or norm_label(second[0]) == norm_label(first[0]):
            continue
        head, tail = _cut_spans(b.spans, b.text[m.end() :][:12])
        if not head or not tail:
            continue
        parts = [
            Block(_spans_box(sp), txt.strip(), [txt.strip()], sp, b.furniture)
            for sp, txt in ((head, b.text[: m.start()]), (tail, b.text[m.end() :]))
        ]
        return [parts[0], *_split_block(parts[1])]
    return [b]


def _cut_spans(spans: list[Span], start: str) -> tuple[list[Span], list[Span]]:
    """Spans before and from the point where text `start` (the second label) begins."""
    pat = re.compile(r"\s*".join(re.escape(c) for c in start.replace(" ", "")))
    for k, sp in enumerate(spans):
        m = pat.search(sp.text, 1 if k == 0 else 0)
        if m is None:
            continue
        idx = m.start()
        if idx == 0:
            return spans[:k], spans[k:]
        flat = sp.text
        x0, y0, x1, y1 = sp.bbox
        cut = x0 + (x1 - x0) * idx / max(len(flat), 1)
        left = Span(flat[:idx].rstrip(), sp.font, sp.size, sp.bold, (x0, y0, cut, y1))
        right = Span(flat[idx:], sp.font, sp.size, sp.bold, (cut, y0, x1, y1))
        return [*spans[:k], left], [right, *spans[k + 1 :]]
    return [], []


def _spans_box(spans: list[Span]) -> Box:
    box = spans[0].bbox
    for sp in spans[1:]:
        box = union(box, sp.bbox)
    return tuple(round(v, 2) for v in box)  # type: ignore[return-value]


def find_captions(page: PageData, style: Style | None = None) -> list[Caption]:
    """Blocks that start with a figure label, scored by how much they look like a caption.

    A body paragraph may also start with "Fig. 3.2 shows ..."; the score (bold label, a size
    other than the body text, closeness to an image) lets the pairer and the orphan logic prefer
    real captions. Blocks holding two captions are split first (`split_shared_captions`).
    """
    split_shared_captions(page)
    size = body_size(page)
    out: list[Caption] = []
    used: set[int] = set()
    blocks = page.blocks
    for i, b in enumerate(blocks):
        if i in used or is_margin(b, page):
            continue
        parsed = parse_label(b.text)
        if not parsed:
            continue
        label = parsed[0]
        score = 0.0
        first = b.spans[0]
        if first.bold:
            score += 1.0
        if abs(b.size - size) >= 0.5:
            score += 1.0
        if re.match(r"^\s*\S+\s*\S+[.:]\s", b.text) or first.bold:
            score += 0.5
        rest = b.text[parsed[1] :]
        if re.match(r"[a-h]?\s*(?:,\s*[a-h]\s*)*[a-z]", rest):
            score -= 1.5  # "Figure 3.2 shows ...", "Fig. 3.2a, b illustrates ...": prose
        if style is not None:
            # The book's own caption font, learned from label blocks that sit by images, is the
            # strongest evidence: prose citing "Figure 3-2 shows" is set in the body font.
            score += 2.0 if signature(first.font, first.size) == style else -3.0
        members = [b]
        box = b.bbox
        # Captions broken into several blocks: absorb continuation blocks of the same style.
        for k in range(i + 1, len(blocks)):
            nb = blocks[k]
            if k in used or parse_label(nb.text) or is_panel_letter(nb) or is_margin(nb, page):
                break
            if abs(nb.size - b.size) > 0.3 or nb.bbox[1] - box[3] > 0.8 * b.size:
                break
            if nb.bbox[1] < box[3] - 0.5 * b.size:
                break  # a caption runs down the page; a block above it is something else
            if overlap(nb.bbox[0], nb.bbox[2], box[0], box[2]) <= 0:
                break
            members.append(nb)
            box = union(box, nb.bbox)
            used.add(k)
        text = " ".join(m.text for m in members)
        out.append(Caption(label, text, box, members, score, b.first_font))
    if style is None and out:
        # No learned style: a candidate far below the best-looking one on the page is prose.
        best = max(c.score for c in out)
        for c in out:
            if c.score <= best - 2.0:
                c.score = min(c.score, -0.5)
    return out


def signature(font: str, size: float) -> Style:
    """What identifies a caption style: the label's font name and size."""
    return (font, round(size, 1))


OFFSET_GAP = 30.0  # farthest below (or above) a caption set off to the side of its picture sits
OFFSET_COST = 6.0  # such a caption loses to one set straight under (or over) the picture


def geometry(g: Box, cb: Box, page: PageData | None = None) -> tuple[float, str] | None:
    """Cost and position (below, above, beside) of a caption box relative to an image box.

    With the `page`, a short caption set flush left under (or over) a narrower centred picture
    also counts (`_offset`): textbooks set figures so, and the caption then shares no column
    with its picture."""
    gw = g[2] - g[0]
    h = overlap(g[0], g[2], cb[0], cb[2])
    v = overlap(g[1], g[3], cb[1], cb[3])
    if h <= 0.3 * min(gw, cb[2] - cb[0]) and page is not None:
        off = _offset(g, cb, page)
        if off is not None:
            return off
    if h > 0.3 * min(gw, cb[2] - cb[0]):
        below = cb[1] - g[3]
        above = g[1] - cb[3]
        if -3 <= below <= CAPTION_GAP:
            return max(below, 0.0), "below"
        if -3 <= above <= CAPTION_GAP:
            return max(above, 0.0) + 8.0, "above"
    elif v > 0.5 * (cb[3] - cb[1]) or v > 0.5 * (g[3] - g[1]):
        side = max(cb[0] - g[2], g[0] - cb[2])
        if -3 <= side <= CAPTION_GAP * 0.6:
            return max(side, 0.0) + 12.0, "beside"
    return None


def _offset(g: Box, cb: Box, page: PageData) -> tuple[float, str] | None:
    """A caption starting left of the picture, just under or over it, with no text between.

    Only a caption flush with the left side counts (the left-aligned caption of a centred
    figure); its horizontal gap to the picture is at most the picture's width and a quarter of
    the page, and some text line on the page runs from the caption's left edge past the
    picture's right edge: caption and picture share one text column. A caption in the other
    column of a two-column page shares none."""
    if cb[0] > g[0] or cb[2] >= g[2]:
        return None
    side_gap = max(g[0] - cb[2], 0.0)
    if side_gap > min(g[2] - g[0], 0.25 * page.width):
        return None
    if not any(
        b.bbox[0] <= cb[0] + 3 and b.bbox[2] >= g[2] - 3 and not is_margin(b, page)
        for b in page.blocks
    ):
        return None
    below = cb[1] - g[3]
    above = g[1] - cb[3]
    if -3 <= below <= OFFSET_GAP:
        gap, pos, extra = (cb[0], g[3], g[2], cb[1]), "below", 0.0
    elif -3 <= above <= OFFSET_GAP:
        gap, pos, extra = (cb[0], cb[3], g[2], g[1]), "above", 8.0
    else:
        return None
    if gap[3] - gap[1] > 1 and any(
        intersects(gap, b.bbox, -0.5) and b.bbox != cb and not is_panel_letter(b)
        for b in page.blocks
    ):
        return None
    return max(below if pos == "below" else above, 0.0) + extra + OFFSET_COST, pos


def learn_caption_style(pages: list[PageData]) -> Style | None:
    """The label font and size most label blocks next to images share, if a clear majority."""
    votes: Counter[Style] = Counter()
    for page in pages:
        groups = group_images(page)
        if not groups:
            continue
        for c in find_captions(page):
            if any(geometry(g.bbox, c.bbox, page) for g in groups):
                first = c.blocks[0].spans[0]
                votes[signature(first.font, first.size)] += 1
    if not votes:
        return None
    style, n = votes.most_common(1)[0]
    if n >= 2 and n >= 0.6 * sum(votes.values()):
        return style
    return None


def drop_tables(page: PageData, groups: list[Group]) -> tuple[list[Group], list[Group]]:
    """Separate raster tables: an image right under a "Table 2.1" caption."""
    tables = [b for b in page.blocks if TABLE_START.match(b.text)]
    kept, dropped = [], []
    for g in groups:
        hit = False
        for t in tables:
            geo = geometry(g.bbox, t.bbox)
            # Tables are captioned above; a "Table" line under an image belongs to what follows.
            if geo and geo[1] == "above" and geo[0] - 8.0 < 24:
                hit = True
                break
        (dropped if hit else kept).append(g)
    return kept, dropped


@dataclass
class Pairing:
    group: Group
    caption: Caption
    position: str  # below | above | beside


def split_by_captions(group: Group, captions: list[Caption]) -> list[Group]:
    """Undo a merge of neighbouring figures: when two or more captions sit under (or over, or
    one under and one over) the group side by side, each narrower than the group, every panel
    goes to the caption in line with it."""
    if len(group.panels) < 2:
        return [group]
    gw = group.bbox[2] - group.bbox[0]
    for sides in (("below",), ("above",), ("below", "above")):
        near = []
        for c in captions:
            if c.score < 0 or c.bbox[2] - c.bbox[0] > 0.75 * gw:
                continue
            geo = geometry(group.bbox, c.bbox)
            if geo and geo[1] in sides:
                near.append((geo[0], c))
        # In each column only the caption nearest the group counts: the next one down belongs
        # to the figure after it.
        under: list[Caption] = []
        for _, c in sorted(near, key=lambda t: t[0]):
            if all(overlap(c.bbox[0], c.bbox[2], u.bbox[0], u.bbox[2]) <= 1 for u in under):
                under.append(c)
        under.sort(key=lambda c: c.bbox[0])
        disjoint = all(a.bbox[2] <= b.bbox[0] + 1 for a, b in itertools.pairwise(under))
        if len(under) < 2 or not disjoint:
            continue
        parts: list[list[Placement]] = [[] for _ in under]
        for p in group.panels:
            k = max(
                range(len(under)),
                key=lambda i: overlap(p.bbox[0], p.bbox[2], under[i].bbox[0], under[i].bbox[2]),
            )
            parts[k].append(p)
        if any(not part for part in parts):
            continue
        out = []
        for part in parts:
            box = part[0].bbox
            for p in part[1:]:
                box = union(box, p.bbox)
            order = reading_order([p.bbox for p in part])
            out.append(Group([part[i] for i in order], box))
        return out
    return _split_rows(group, captions)


def _split_rows(group: Group, captions: list[Caption]) -> list[Group]:
    """Two stacked figures merged into one group, the first captioned above and the second
    below: split at the widest gap between rows when neither caption names all the panels."""
    near: dict[str, list[Caption]] = {"above": [], "below": []}
    for c in captions:
        geo = geometry(group.bbox, c.bbox) if c.score >= 0 else None
        if geo and geo[1] in near:
            near[geo[1]].append(c)
    if len(near["above"]) != 1 or len(near["below"]) != 1:
        return [group]
    n = len(group.panels)
    if any(
        len(split_subcaptions(c.text)[1]) in (0, n) for c in (near["above"][0], near["below"][0])
    ):
        return [group]
    panels = sorted(group.panels, key=lambda p: p.bbox[1])
    best, cut = 0.0, 0
    bottom = panels[0].bbox[3]
    for i in range(1, len(panels)):
        gap = panels[i].bbox[1] - bottom
        if gap > best:
            best, cut = gap, i
        bottom = max(bottom, panels[i].bbox[3])
    if cut == 0:
        return [group]
    parts = [panels[:cut], panels[cut:]]
    return [_group([part[i] for i in reading_order([p.bbox for p in part])]) for part in parts]


def pair(
    groups: list[Group], captions: list[Caption], page: PageData | None = None
) -> tuple[list[Pairing], list[Group], list[Caption]]:
    """Greedy nearest-first matching of image groups to caption blocks on one page; with the
    `page`, each figure then takes in the short texts set around it (`grow_with_labels`)."""
    groups = [part for g in groups for part in split_by_captions(g, captions)]
    options: list[tuple[float, int, int, str]] = []
    for gi, g in enumerate(groups):
        for ci, c in enumerate(captions):
            if c.score < 0:
                continue  # not in the book's caption style: prose that starts with a label
            geo = geometry(g.bbox, c.bbox, page)
            if geo is not None:
                cost = geo[0] - 4.0 * c.score + (VECTOR_PENALTY if is_vector(g) else 0.0)
                options.append((cost, gi, ci, geo[1]))
    options.sort()
    taken_g: set[int] = set()
    taken_c: set[int] = set()
    pairs = []
    for _, gi, ci, pos in options:
        if gi in taken_g or ci in taken_c:
            continue
        taken_g.add(gi)
        taken_c.add(ci)
        pairs.append(Pairing(groups[gi], captions[ci], pos))
    pairs.sort(key=lambda p: (p.group.bbox[1], p.group.bbox[0]))
    if page is not None:
        boxes = [g.bbox for g in groups]
        for p in pairs:
            grow_with_labels(p, page, [b for b in boxes if b != p.group.bbox], captions)
    left_g = [g for i, g in enumerate(groups) if i not in taken_g]
    left_c = [c for i, c in enumerate(captions) if i not in taken_c]
    return pairs, left_g, left_c


GROW_GAP = 8.0  # farthest a label (axis title, tick, legend, panel letter) sits from its figure
GROW_WORDS = 6  # longest text taken as a figure's label; small type may run longer
SMALL_WORDS = 14


def grow_with_labels(
    p: Pairing, page: PageData, others: list[Box], captions: list[Caption]
) -> None:
    """Take into the figure's box the short texts set on or just around it: axis titles and
    ticks, legends, panel letters, a forest plot's study column. They are text, not image,
    so the image or drawing alone leaves them out.

    A text qualifies when it is short (or set smaller than the body and not long), lies
    within GROW_GAP of the figure box grown so far, belongs to no caption, is no running head
    or label block, and touches no other figure. A lone vector figure's panel grows with it.
    Panel letters beside photographs are left out: they are read as letters, not cropped.
    """
    size = body_size(page)
    in_caption = {id(b) for c in captions for b in c.blocks}
    box = p.group.bbox
    drawing = is_vector(p.group)
    pending = [
        b
        for b in page.blocks
        if id(b) not in in_caption
        and not is_margin(b, page)
        # Letters set beside photographs name the panels (`panel_letters_in_image`); the
        # crop is the photographs. A drawing's letters are part of the drawing.
        and (drawing or not is_panel_letter(b))
        and not parse_label(b.text)
        and _label_like(b, size)
        and not any(intersects(b.bbox, o, 0.5) for o in others)
    ]
    grew = True
    while grew:
        grew = False
        for b in list(pending):
            if intersects(b.bbox, box, GROW_GAP):
                new = union(box, b.bbox)
                if any(intersects(new, o) for o in others):
                    pending.remove(b)
                    continue
                box = new
                pending.remove(b)
                grew = True
    if box == p.group.bbox:
        return
    panels = p.group.panels
    if len(panels) == 1 and panels[0].vector:
        panels = [Placement(box, 0, 0, 0, vector=True)]
    p.group = Group(panels, box)


STACK_GAP = 24.0  # farthest apart two stacked parts of one vector figure sit, labels taken in


def stack_vector_parts(
    pairs: list[Pairing], left: list[Group], page: PageData, captions: list[Caption]
) -> list[Group]:
    """Take into a captioned vector figure the uncaptioned drawings stacked on its far side
    from the caption (or beside it): several plots set one over another under one caption.

    A part qualifies when it spans most of the figure's width, sits within STACK_GAP of it
    once both have taken in their labels, and only short label texts (ticks, axis titles, a
    plot title) lie between. A part next to a "Table" caption is a table's rules and is left.
    Each part becomes an unlettered panel. Returns the groups still unpaired.
    """
    left = list(left)
    size = body_size(page)
    in_caption = {id(b) for c in captions for b in c.blocks}
    tables = [b.bbox for b in page.blocks if TABLE_START.match(b.text)]
    for p in pairs:
        if not is_vector(p.group):
            continue
        grew = True
        while grew:
            grew = False
            for g in sorted(left, key=lambda g: (g.bbox[1], g.bbox[0])):
                if not is_vector(g):
                    continue
                part = Pairing(g, p.caption, p.position)
                others = [o.bbox for o in left if o is not g] + [p.group.bbox]
                grow_with_labels(part, page, others, captions)
                a, b = p.group.bbox, part.group.bbox
                if overlap(a[0], a[2], b[0], b[2]) < 0.7 * min(a[2] - a[0], b[2] - b[0]):
                    continue
                if b[3] <= a[1] + 1:
                    gap, side = (max(a[0], b[0]), b[3], min(a[2], b[2]), a[1]), "above"
                elif b[1] >= a[3] - 1:
                    gap, side = (max(a[0], b[0]), a[3], min(a[2], b[2]), b[1]), "below"
                else:
                    continue
                if gap[3] - gap[1] > STACK_GAP or side == p.position:
                    continue  # too far, or on the caption's side: that is another figure
                if any(geometry(b, t) for t in tables):
                    continue
                if any(
                    intersects(gap, blk.bbox, -0.5)
                    and not is_margin(blk, page)
                    and (id(blk) in in_caption or not _stack_label(blk, size))
                    for blk in page.blocks
                ):
                    continue
                panels = p.group.panels
                if len(panels) == 1 and panels[0].vector:
                    panels = [Placement(a, 0, 0, 0, vector=True)]
                members = [*panels, Placement(b, 0, 0, 0, vector=True)]
                order = reading_order([m.bbox for m in members])
                p.group = Group([members[i] for i in order], union(a, b))
                left.remove(g)
                grew = True
                break
    return left


def _stack_label(b: Block, body: float) -> bool:
    return not parse_label(b.text) and _label_like(b, body)


TICKS = re.compile(r"[\d\s.,:%+\-\u2212\u2013]+")  # a row or column of axis tick values


def _label_like(b: Block, body: float) -> bool:
    words = len(b.text.split())
    if words <= 2 * SMALL_WORDS and TICKS.fullmatch(b.text):
        return True  # "0 50 100 ... 450": an axis's ticks, however many
    if words <= GROW_WORDS:
        # A bold heading set larger than the body ("2.3 Results") is no label.
        return not (b.spans[0].bold and b.size > body + 0.5)
    return words <= SMALL_WORDS and b.size < body - 0.5


def absorb_panels(pairs: list[Pairing], left: list[Group], page: PageData, wanted) -> list[Group]:
    """Grow captioned groups with uncaptioned neighbours until they hold the panels the caption
    letters promise; panels set further apart than MERGE_GAP are otherwise lost as orphans.

    `wanted(pairing)` gives how many panels the caption names. Neighbours must line up with a
    panel already in the figure and have only panel letters between them.
    """
    left = list(left)
    for p in pairs:
        need = wanted(p)
        grew = True
        while grew and len(p.group.panels) < need and left:
            grew = False
            for g in sorted(left, key=lambda g: (g.bbox[1], g.bbox[0])):
                # The whole neighbour group, or failing that the panels of it that line up
                # (a row loosely merged across two columns holds panels of two figures).
                near = [
                    b
                    for b in g.panels
                    if any(_neighbours(a.bbox, b.bbox, page) for a in p.group.panels)
                ]
                take = g.panels if near and len(p.group.panels) + len(g.panels) <= need else near
                if not take or len(p.group.panels) + len(take) > need:
                    continue
                members = p.group.panels + take
                order = reading_order([m.bbox for m in members])
                p.group = _group([members[i] for i in order])
                left.remove(g)
                rest = [b for b in g.panels if b not in take]
                if rest:
                    left.append(_group(rest))
                grew = True
                break
    return left


def _group(panels: list[Placement]) -> Group:
    box = panels[0].bbox
    for p in panels[1:]:
        box = union(box, p.bbox)
    return Group(panels, box)


def complete_pairs(
    pairs: list[Pairing], page: PageData, wanted
) -> tuple[list[Pairing], list[Caption]]:
    """Resolve two captions splitting one figure between them (a caption above the top row and
    another below the bottom row): when the two halves together hold exactly the panels one
    caption names, that caption keeps them all and the other is freed to be an orphan (it
    usually belongs to a figure across the page break)."""
    pairs = list(pairs)
    freed: list[Caption] = []
    changed = True
    while changed:
        changed = False
        for p, q in itertools.permutations(pairs, 2):
            if is_vector(p.group) or is_vector(q.group):
                continue  # a drawing is one whole figure, never half of a panel grid
            need = wanted(p)
            have = len(p.group.panels) + len(q.group.panels)
            if len(p.group.panels) >= need or have != need:
                continue
            if len(q.group.panels) >= wanted(q) and wanted(q) > 0:
                continue  # q is complete on its own: the panels are rightly its
            stacked = overlap(p.group.bbox[0], p.group.bbox[2], q.group.bbox[0], q.group.bbox[2])
            if stacked < 0.8 * min(
                p.group.bbox[2] - p.group.bbox[0], q.group.bbox[2] - q.group.bbox[0]
            ):
                continue  # only rows of one grid; side-by-side figures are `split_by_captions`'
            if not any(
                _neighbours(a.bbox, b.bbox, page) for a in p.group.panels for b in q.group.panels
            ):
                continue
            if p.position != "below" and q.position == "below" and wanted(q) == need:
                continue  # let the permutation with q first take them
            members = p.group.panels + q.group.panels
            order = reading_order([m.bbox for m in members])
            p.group = Group([members[i] for i in order], union(p.group.bbox, q.group.bbox))
            pairs.remove(q)
            freed.append(q.caption)
            changed = True
            break
    return pairs, freed


def _neighbours(a: Box, b: Box, page: PageData, gap: float = 40.0) -> bool:
    """Panels of one figure: same size (within 10%), aligned, close, nothing written between."""
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    if abs(wa - wb) > 0.1 * max(wa, wb) or abs(ha - hb) > 0.1 * max(ha, hb):
        return False
    v = overlap(a[1], a[3], b[1], b[3])
    h = overlap(a[0], a[2], b[0], b[2])
    if (abs(a[1] - b[1]) < ALIGN or abs(a[3] - b[3]) < ALIGN) and -h <= gap and v > 0:
        between = (min(a[2], b[2]), max(a[1], b[1]), max(a[0], b[0]), min(a[3], b[3]))
    elif (abs(a[0] - b[0]) < ALIGN or abs(a[2] - b[2]) < ALIGN) and -v <= gap and h > 0:
        between = (max(a[0], b[0]), min(a[3], b[3]), min(a[2], b[2]), max(a[1], b[1]))
    else:
        return False
    return not _gap_has_text(between, page.blocks)


def panel_letters_in_image(group: Group, page: PageData) -> list[str | None]:
    """Letters printed on or at the corner of each panel ("a", "B", "(c)")."""
    out: list[str | None] = []
    for p in group.panels:
        found = None
        box = p.bbox
        spans = [s for b in page.blocks if intersects(b.bbox, box, 14) for s in b.spans]
        for s in spans:
            m = PANEL_LETTER.match(s.text.strip())
            if not m:
                continue
            cx = (s.bbox[0] + s.bbox[2]) / 2
            cy = (s.bbox[1] + s.bbox[3]) / 2
            if box[0] - 2 <= cx <= box[2] + 2 and box[1] - 14 <= cy <= box[3] + 16:
                found = m.group(1).lower()
                break
        out.append(found)
    return out


def join_continued_captions(figures: list[FigureInfo], orphans: list[dict]) -> list[dict]:
    """Append each continued caption ("Figure 2 (...continued) ...", a caption orphan on a
    later page) to its figure, the nearest one before it with that label, and return the
    orphans left. The continuation is no second figure and pairs with no image."""
    left = []
    for o in orphans:
        rest = continuation(o.get("text", "")) if o.get("kind") == "caption" else None
        key = norm_label(o["label"]) if rest is not None else None
        earlier = [
            f
            for f in figures
            if key is not None and norm_label(f.label) == key and f.page <= o["page"]
        ]
        if not earlier:
            left.append(o)
            continue
        f = max(earlier, key=lambda f: f.page)
        f.caption = join_continuation(f.caption, rest or "")
        if "caption_continued" not in f.flags:
            f.flags = sorted([*f.flags, "caption_continued"])
    return left
