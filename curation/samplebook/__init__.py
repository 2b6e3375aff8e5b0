"""Procedural sample dermatology textbook with gold data, for tests, demos and benchmarks.

Pure Python on PyMuPDF, Pillow and NumPy; no Django import. A second producer
(`producer="chromium"`) sets the same content as HTML and prints it with headless Chromium
through Playwright.
"""

from .book import (
    PRODUCERS,
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
    "PRODUCERS",
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
