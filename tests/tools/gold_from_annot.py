"""Compile hand annotations of the real corpus (annot/<id>.txt) into gold (gold/<id>.json).

An annotator looks at a page render with its numbered elements drawn on it (`draw_gold.py
--elements`) and writes one line per figure, naming the elements that make up the figure, its
caption and its panels, or a box in PDF points where no element fits:

    p3 "Figure 2" fig=I0,I1,T4 cap=T5 panels=a:I0;b:I1
    p5 "Fig. 7" fig=[56,80,300,260] cap=T9+T10 capp=6
    p3 "Figure 2" fig=I0 cap=T0 cap2=T0 capp2=4


Element ids: T<n> text blocks, I<n> images, D<n> clusters of vector drawings, numbered in the
order PyMuPDF returns them (`page_elements`). A figure without `panels=` is one panel with no
letter covering the figure. `cap2`/`capp2` name where a caption goes on (the next column or
page); its text is appended. Caption text is the page's words whose centre lies in the caption
box, in reading order. Mentions are the body-text blocks (outside every caption) that cite the
figure's number, ranges such as "Figs. 2-4" expanded; lines `m p4 "Figure 2" T6` add one by
hand and `-m p4 "Figure 2" T6` remove one. The output has the `figures.json` shape of
`python -m curation.extract`, without crops, and page numbers of the cut PDF.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import unicodedata
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"
sys.path.insert(0, str(REAL))

from fetch_corpus import load_manifest, pdf_path  # noqa: E402

Box = tuple[float, float, float, float]


def page_elements(page: pymupdf.Page) -> dict[str, tuple[Box, str]]:
    """Numbered elements of a page: id -> (box, text). Stable for one PyMuPDF version.
    Lines of text block T<n> are also there as T<n>:<i> (0-based), for captions that share a
    block with body text."""
    out: dict[str, tuple[Box, str]] = {}
    lines: dict[str, tuple[Box, str]] = {}
    t = 0
    for b in page.get_text("dict")["blocks"]:
        if b["type"] != 0:
            continue
        texts = ["".join(s["text"] for s in line["spans"]) for line in b["lines"]]
        text = " ".join(texts).strip()
        if not text:
            continue
        out[f"T{t}"] = (tuple(b["bbox"]), text)
        for i, (line, lt) in enumerate(zip(b["lines"], texts, strict=True)):
            lines[f"T{t}:{i}"] = (tuple(line["bbox"]), lt)
        t += 1
    for i, info in enumerate(page.get_image_info()):
        out[f"I{i}"] = (tuple(info["bbox"]), "")
    try:
        clusters = page.cluster_drawings()
    except Exception:  # a page whose drawings cannot be read has none to annotate
        clusters = []
    for i, r in enumerate(clusters):
        out[f"D{i}"] = (tuple(r), "")
    out.update(lines)
    return out


def union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def resolve(spec: str, elements: dict[str, tuple[Box, str]]) -> Box:
    """A box from "I0,T3" (union of elements; "+" works too), "T4:0-2" (lines 0 to 2 of T4)
    or "[x0,y0,x1,y1]"."""
    spec = spec.strip()
    if spec.startswith("["):
        vals = [float(v) for v in spec.strip("[]").split(",")]
        return (vals[0], vals[1], vals[2], vals[3])
    boxes = []
    for part in re.split(r"[,+]", spec):
        if part.startswith("["):
            raise ValueError(f"mixing a box with elements is not supported: {spec}")
        m = re.fullmatch(r"(T\d+):(\d+)-(\d+)", part)
        if m:
            lines = [f"{m.group(1)}:{i}" for i in range(int(m.group(2)), int(m.group(3)) + 1)]
            boxes.extend(elements[name][0] for name in lines)
            continue
        if part not in elements:
            raise KeyError(f"no element {part}")
        boxes.append(elements[part][0])
    return union(boxes)


def words_in(page: pymupdf.Page, box: Box) -> str:
    """The words whose centre lies in `box`, in PyMuPDF's reading order (block, line, word)."""
    words = [
        w
        for w in page.get_text("words")
        if box[0] <= (w[0] + w[2]) / 2 <= box[2] and box[1] <= (w[1] + w[3]) / 2 <= box[3]
    ]
    words.sort(key=lambda w: (w[5], w[6], w[7]))
    text = " ".join(w[4] for w in words)
    return re.sub(r"\s+", " ", text).strip()


REF = re.compile(
    r"\b(?:fig(?:ure)?s?|FIG(?:URE)?S?)\.?\s*(\d+)((?:\s*(?:,|;|and|&|\u2013|-|to)\s*\d+)*)",
    re.I,
)


CHAPTERED_REF = re.compile(
    r"\b(?:fig(?:ure)?s?|FIG(?:URE)?S?)\.?\s*(\d+[.\-\u2013]\d+)((?:\s*(?:,|;|and|&)\s*\d+[.\-\u2013]\d+)*)",
    re.I,
)


def cited_numbers(text: str, chaptered: bool = False) -> set[str]:
    """Figure numbers a text cites, with ranges ("2-4", "2 to 4") expanded. In a book whose
    figures are numbered by chapter ("Figure 7-26") the dash joins chapter and number."""
    text = unicodedata.normalize("NFKC", text)  # "\ufb01gure": TeX's fi ligature
    text = re.sub(r"(\w)- (\w)", r"\1\2", text)  # "fig- ure" broken over a line
    found: set[str] = set()
    if chaptered:
        for m in CHAPTERED_REF.finditer(text):
            nums = [m.group(1), *re.findall(r"\d+[.\-\u2013]\d+", m.group(2) or "")]
            found.update(re.sub(r"[\-\u2013]", ".", n) for n in nums)
        return found
    for m in REF.finditer(text):
        nums = [m.group(1)]
        rest = m.group(2) or ""
        for sep, n in re.findall(r"\s*(,|;|and|&|\u2013|-|to)\s*(\d+)", rest):
            if sep in ("\u2013", "-", "to") and nums[-1].isdigit():
                lo, hi = int(nums[-1]), int(n)
                if lo < hi <= lo + 40:
                    nums.extend(str(k) for k in range(lo + 1, hi + 1))
                    continue
            nums.append(n)
        found.update(nums)
    return found


def label_number(label: str) -> str:
    m = re.search(r"\d+(?:[.\-\u2013]\d+)?", label)
    return re.sub(r"[\-\u2013]", ".", m.group(0)) if m else label


def compile_doc(doc_id: str) -> dict:
    """Gold of one document from its annotation file."""
    doc = next(d for d in load_manifest() if d["id"] == doc_id)
    pdf = pymupdf.open(pdf_path(doc))
    lines = (REAL / "annot" / f"{doc_id}.txt").read_text("utf-8").splitlines()
    elements = {n: page_elements(pdf[n - 1]) for n in range(1, pdf.page_count + 1)}
    figures = []
    continued: list[tuple[int, Box]] = []  # caption continuations: no mention inside either
    extra: list[tuple[int, str, str]] = []
    removed: list[tuple[int, str, str]] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = shlex.split(line)
        if tok[0] in ("m", "-m"):
            entry = (int(tok[1][1:]), tok[2], tok[3])
            (extra if tok[0] == "m" else removed).append(entry)
            continue
        page = int(tok[0][1:])
        label = tok[1]
        kv = dict(t.split("=", 1) for t in tok[2:])
        els = elements[page]
        bbox = resolve(kv["fig"], els)
        cap_page = int(kv.get("capp", page))
        cap_box = resolve(kv["cap"], elements[cap_page])
        caption = words_in(pdf[cap_page - 1], cap_box)
        if "cap2" in kv:  # the caption continues elsewhere (next column or page)
            page2 = int(kv.get("capp2", cap_page))
            box2 = resolve(kv["cap2"], elements[page2])
            caption += " " + words_in(pdf[page2 - 1], box2)
            continued.append((page2, box2))
        panels = []
        if "panels" in kv:
            for item in kv["panels"].split(";"):
                letter, spec = item.split(":", 1)
                panels.append(
                    {"letter": None if letter == "-" else letter, "bbox": resolve(spec, els)}
                )
        else:
            panels.append({"letter": None, "bbox": bbox})
        figures.append(
            {
                "label": label,
                "page": page,
                "bbox": [round(v, 2) for v in bbox],
                "caption": caption,
                "caption_bbox": [round(v, 2) for v in cap_box],
                "caption_page": cap_page,
                "panels": [
                    {"letter": p["letter"], "bbox": [round(v, 2) for v in p["bbox"]]}
                    for p in panels
                ],
                "mentions": [],
            }
        )
    caption_boxes = {(f["caption_page"], tuple(f["caption_bbox"])) for f in figures}
    caption_boxes |= set(continued)

    def in_caption(page: int, box: Box) -> bool:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return any(
            p == page and c[0] - 1 <= cx <= c[2] + 1 and c[1] - 1 <= cy <= c[3] + 1
            for p, c in caption_boxes
        )

    chaptered = any("." in label_number(f["label"]) for f in figures)
    by_number: dict[str, list[dict]] = {}
    for f in figures:
        by_number.setdefault(label_number(f["label"]), []).append(f)
    for page, els in elements.items():
        for eid, (box, text) in els.items():
            if not eid.startswith("T") or ":" in eid:
                continue
            # A block that holds a caption and body text: only its body lines can cite.
            body = [
                lt
                for name, (lb, lt) in els.items()
                if name.startswith(eid + ":") and not in_caption(page, lb)
            ]
            text = " ".join(t.strip() for t in body if t.strip())
            if any(f["page"] == page and _inside(box, f["bbox"]) for f in figures):
                continue  # text drawn inside a figure (axis labels, a legend) is no mention
            for num in cited_numbers(text, chaptered):
                for f in by_number.get(num, []):
                    f["mentions"].append({"page": page, "text": text})
    for page, label, eid in extra:
        f = next(f for f in figures if f["label"] == label)
        f["mentions"].append({"page": page, "text": elements[page][eid][1]})
    for page, label, eid in removed:
        f = next(f for f in figures if f["label"] == label)
        text = elements[page][eid][1]
        f["mentions"] = [m for m in f["mentions"] if (m["page"], m["text"]) != (page, text)]
    return {
        "source": f"{doc_id}.pdf",
        "page_count": pdf.page_count,
        "annotated": "by hand: element ids per figure checked on renders; see annot/",
        "figures": figures,
    }


def _inside(box: Box, outer: list[float]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


FIGURE_KEYS = ("label", "page", "bbox", "caption", "caption_bbox", "caption_page", "panels")


def check_gold(gold: dict, page_sizes: dict[int, tuple[float, float]]) -> list[str]:
    """Problems of a gold file against the figures.json shape and its PDF's page sizes (empty
    when it is sound): every box inside its page and not empty, panels inside their figure,
    a caption that starts with the figure's number, mentions on existing pages."""
    problems: list[str] = []
    for key in ("source", "page_count", "figures"):
        if key not in gold:
            problems.append(f"missing {key}")
    for i, f in enumerate(gold.get("figures", [])):
        where = f"figure {i} ({f.get('label')})"
        problems += [f"{where}: missing {k}" for k in FIGURE_KEYS if k not in f]
        if any(k not in f for k in FIGURE_KEYS):
            continue
        boxes = [
            ("bbox", f["page"], f["bbox"]),
            ("caption_bbox", f["caption_page"], f["caption_bbox"]),
        ]
        boxes += [(f"panel {p.get('letter')}", f["page"], p["bbox"]) for p in f["panels"]]
        for name, page, box in boxes:
            if page not in page_sizes:
                problems.append(f"{where}: {name} on page {page}, which the PDF lacks")
                continue
            w, h = page_sizes[page]
            x0, y0, x1, y1 = box
            if not (x1 - x0 > 1 and y1 - y0 > 1):
                problems.append(f"{where}: {name} is empty {box}")
            if x0 < -1 or y0 < -1 or x1 > w + 1 or y1 > h + 1:
                problems.append(f"{where}: {name} {box} leaves the {w:.0f}x{h:.0f} page")
        fx0, fy0, fx1, fy1 = f["bbox"]
        for p in f["panels"]:
            px0, py0, px1, py1 = p["bbox"]
            if px0 < fx0 - 1 or py0 < fy0 - 1 or px1 > fx1 + 1 or py1 > fy1 + 1:
                problems.append(f"{where}: panel {p.get('letter')} leaves its figure")
        if not f["panels"]:
            problems.append(f"{where}: no panels (a single-image figure has one)")
        if label_number(f["label"]) not in re.sub(r"[\-\u2013]", ".", f["caption"][:40]):
            problems.append(f"{where}: caption does not start with its number: {f['caption'][:40]}")
        for m in f.get("mentions", []):
            if m["page"] not in page_sizes or not m["text"].strip():
                problems.append(f"{where}: bad mention {m}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("docs", nargs="*", help="document ids (default: every annotated one)")
    args = ap.parse_args(argv)
    ids = args.docs or sorted(p.stem for p in (REAL / "annot").glob("*.txt"))
    for doc_id in ids:
        gold = compile_doc(doc_id)
        out = REAL / "gold" / f"{doc_id}.json"
        out.write_text(json.dumps(gold, indent=1, ensure_ascii=False) + "\n", "utf-8")
        print(f"{doc_id}: {len(gold['figures'])} figures -> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
