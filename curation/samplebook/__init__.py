"""Procedural sample dermatology textbook with gold data, for tests, demos and benchmarks.

Pure Python on PyMuPDF, Pillow and NumPy; no Django import.
"""

from .book import (
    STYLES,
    BookStyle,
    GoldBook,
    GoldDecoy,
    GoldFigure,
    GoldMention,
    GoldPanel,
    chapters_for_pages,
    generate_book,
)

__all__ = [
    "STYLES",
    "BookStyle",
    "GoldBook",
    "GoldDecoy",
    "GoldFigure",
    "GoldMention",
    "GoldPanel",
    "chapters_for_pages",
    "generate_book",
]
