"""Cheap upload checks: decide from the bytes and the page tree alone whether a PDF is usable.

Nothing is rendered, so a curator gets an answer while the upload request is still open.
"""

from __future__ import annotations

import os
from pathlib import Path

import pymupdf

from .errors import PdfError
from .model import PdfInfo

# MuPDF repairs what it can and prints to stderr; we ask for its warnings explicitly instead.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

HEADER_WINDOW = 1024
TAIL_WINDOW = 4096


def open_pdf(path: str | Path) -> pymupdf.Document:
    """Open a PDF or raise the PdfError that names why it cannot be used."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise PdfError("not_pdf", f"The file {path.name} cannot be read: {exc.strerror}.") from exc
    if size == 0:
        raise PdfError("empty", "The file is empty (0 bytes); the upload may have failed.")
    with open(path, "rb") as fh:
        head = fh.read(HEADER_WINDOW)
        fh.seek(max(0, size - TAIL_WINDOW))
        tail = fh.read()
    if b"%PDF-" not in head:
        lowered = head.lower()
        if b"<html" in lowered or b"<!doctype" in lowered:
            message = "The file is an HTML page saved with a .pdf name, not a PDF."
        else:
            message = "The file is not a PDF: it does not start with a PDF header."
        raise PdfError("not_pdf", message)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # MuPDF raises several types for unreadable files
        raise PdfError("corrupt", f"The PDF is damaged and cannot be opened ({exc}).") from exc
    if doc.needs_pass:
        doc.close()
        raise PdfError(
            "encrypted",
            "The PDF is password-protected; upload a copy saved without a password.",
        )
    if doc.is_repaired and b"%%EOF" not in tail:
        doc.close()
        raise PdfError(
            "corrupt",
            "The PDF is truncated (its end is missing), probably from an interrupted download; "
            "upload the complete file.",
        )
    return doc


def declared_page_count(doc: pymupdf.Document) -> int | None:
    """The /Count the root of the page tree claims, read from that one object.

    A forged file can claim any number; this reads it without walking the tree or allocating
    anything per page, so a limit can be enforced before MuPDF counts the pages itself.
    """
    try:
        kind, ref = doc.xref_get_key(doc.pdf_catalog(), "Pages")
        if kind != "xref":
            return None
        kind, count = doc.xref_get_key(int(ref.split()[0]), "Count")
        return int(count) if kind == "int" else None
    except Exception:  # no catalog, a broken reference: MuPDF's own count decides below
        return None


def check_pages(doc: pymupdf.Document, max_pages: int | None) -> None:
    """Raise when the page tree is empty, too long, or has pages that cannot be loaded."""
    declared = declared_page_count(doc)
    if max_pages is not None and declared is not None and declared > max_pages:
        raise PdfError(
            "too_many_pages",
            f"The PDF declares {declared:,} pages, more than the limit of {max_pages:,}.",
        )
    try:
        n = doc.page_count
    except Exception as exc:  # MuPDF counts the leaves and refuses a tree that does not add up
        raise PdfError(
            "corrupt",
            "The PDF is damaged: its page tree does not hold the pages it declares "
            f"({str(exc).split(': ', 1)[-1]}).",
        ) from exc
    if n == 0:
        raise PdfError("no_pages", "The PDF is valid but contains no pages.")
    if max_pages is not None and n > max_pages:
        raise PdfError(
            "too_many_pages", f"The PDF has {n} pages, more than the limit of {max_pages}."
        )
    try:  # MuPDF tolerates a /Count a little above the real pages; the last one must exist
        doc.load_page(n - 1)
    except Exception as exc:
        raise PdfError(
            "corrupt",
            f"The PDF is damaged: it declares {n} pages but page {n} cannot be found.",
        ) from exc
    if doc.is_repaired:
        for i in range(n):
            try:
                doc.load_page(i)
            except Exception as exc:
                raise PdfError(
                    "corrupt", f"The PDF is damaged: page {i + 1} cannot be read ({exc})."
                ) from exc


def _looks_scanned(doc: pymupdf.Document, samples: int = 8) -> bool:
    """True when most of a few evenly spaced pages carry (almost) no extractable text."""
    n = doc.page_count
    picks = sorted({int(i * n / samples) for i in range(samples)} & set(range(n)))
    empty = 0
    for i in picks:
        try:
            if len(doc[i].get_text("text").strip()) < 20:
                empty += 1
        except Exception:
            empty += 1
    return bool(picks) and empty >= 0.75 * len(picks)


def inspect_pdf(path: str | Path, *, max_pages: int | None = None) -> PdfInfo:
    """Validate an upload and return its page count and metadata, without rendering anything."""
    doc = open_pdf(path)
    try:
        check_pages(doc, max_pages)
        meta = doc.metadata or {}
        return PdfInfo(
            page_count=doc.page_count,
            title=(meta.get("title") or "").strip(),
            author=(meta.get("author") or "").strip(),
            likely_scanned=_looks_scanned(doc),
        )
    finally:
        doc.close()


# --- the figures.json contract (what `python -m curation.extract` writes) -------------------

_NUMBER = (int, float)
FIGURE_FIELDS: dict[str, tuple[type, ...]] = {
    "label": (str,),
    "page": (int,),
    "bbox": (list,),
    "caption": (str,),
    "caption_bbox": (list, type(None)),
    "image": (str,),
    "panels": (list,),
    "modality": (str,),
    "modality_confidence": _NUMBER,
    "mentions": (list,),
    "section": (list,),
    "diagnosis": (str,),
    "age": (int, type(None)),
    "sex": (str, type(None)),
    "flags": (list,),
}
PANEL_FIELDS: dict[str, tuple[type, ...]] = {
    "letter": (str, type(None)),
    "bbox": (list,),
    "subcaption": (str,),
    "image": (str,),
    "modality": (str,),
    "modality_confidence": _NUMBER,
}
# Optional on figures and panels: older files lack them, and readers treat them as unknown.
OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {"confidence": _NUMBER, "doubts": (list,)}


def _check_record(where: str, record: object, fields: dict[str, tuple[type, ...]]) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where}: not an object"]
    problems = []
    for key, types in fields.items():
        if key not in record:
            problems.append(f"{where}: missing {key!r}")
        elif isinstance(record[key], bool) or not isinstance(record[key], types):
            problems.append(f"{where}: {key!r} has the wrong type")
    for key, types in OPTIONAL_FIELDS.items():
        if key not in record:
            continue
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, types):
            problems.append(f"{where}: {key!r} has the wrong type")
        elif key == "confidence" and not 0.0 <= value <= 1.0:
            problems.append(f"{where}: 'confidence' {value} outside [0, 1]")
        elif key == "doubts" and not all(isinstance(d, str) and d for d in value):
            problems.append(f"{where}: 'doubts' must be reason strings")
    return problems


def check_figures_json(doc: object) -> list[str]:
    """Problems of a figures.json document against the contract; [] when it conforms.

    Figures and panels may carry `confidence` (a number in [0, 1]) and `doubts` (reason
    strings, see `confidence.PENALTY`); the platform stores both on the pair.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("figures"), list):
        return ["the document has no 'figures' list"]
    problems = []
    for i, fig in enumerate(doc["figures"]):
        problems += _check_record(f"figures[{i}]", fig, FIGURE_FIELDS)
        panels = fig.get("panels") if isinstance(fig, dict) else None
        for j, panel in enumerate(panels if isinstance(panels, list) else []):
            problems += _check_record(f"figures[{i}].panels[{j}]", panel, PANEL_FIELDS)
    return problems
