"""Pure PDF -> figures/captions/panels/mentions extraction (PyMuPDF, Pillow, NumPy; no Django).

Steps, each a small module on plain dataclasses: `validate` (upload checks), `reader` (page
reader), `layout` (candidate finder, caption finder, pairer), `pipeline` (panel splitter,
annotator, chunk/link drivers), `annotate` (caption text rules), `mentions`, `imagecues`.
"""

from .errors import PdfError
from .model import (
    ChunkResult,
    FigureInfo,
    FigureRef,
    LinkResult,
    Mention,
    PageInfo,
    PanelInfo,
    PdfInfo,
)
from .pipeline import extract_book, extract_chunk, link_book
from .validate import inspect_pdf

__all__ = [
    "ChunkResult",
    "FigureInfo",
    "FigureRef",
    "LinkResult",
    "Mention",
    "PageInfo",
    "PanelInfo",
    "PdfError",
    "PdfInfo",
    "extract_book",
    "extract_chunk",
    "inspect_pdf",
    "link_book",
]
