"""The one exception extraction raises for a bad input, with a stable code for the UI, and the
words a curator reads for any extraction failure (`describe_failure`)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

CODES = (
    "empty",
    "not_pdf",
    "corrupt",
    "encrypted",
    "no_pages",
    "too_many_pages",
    "broken_image",
    "ocr_unavailable",
)


class PdfError(Exception):
    """A PDF that cannot be used, with a machine code and one human sentence naming the problem.

    The code lets the platform store and filter failures; the message is shown to the curator
    as is, so it says what is wrong and, where it helps, what to do.
    """

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown PdfError code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"PdfError({self.code!r}, {self.message!r})"


# --- describing any extraction failure to a curator ------------------------------------------

MAX_DETAIL = 300
MAX_MESSAGE = 500

# MuPDF's error classes (fz_error_type), as the `code=N:` prefix of its exceptions names them.
_MUPDF_CODE = re.compile(r"^\s*code=(\d+):\s*")
_LIMIT, _UNSUPPORTED, _SYSTEM = 5, 6, 2
_DAMAGED = {1, 7, 8, 11}  # generic, format, syntax, repaired
# `<pymupdf.mupdf.FzErrorLimit; proxy of <Swig Object ... at 0x...> >` and the like.
_OBJECT_REPR = re.compile(r"<[^<>]*(?:<[^<>]*>[^<>]*)*>")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{4,}\b")
# Absolute or multi-segment paths, quoted or not: they name the server's disk, not the book.
_PATH = re.compile(
    r"""(?:file://)?['"]?(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][^\s'"<>|()\[\],;:]+)+['"]?"""
    r"""|['"]?\b[\w.-]+(?:[\\/][\w.-]+)+\.pdf\b['"]?"""
)
_SPACES = re.compile(r"\s+")


@contextlib.contextmanager
def on_page(number: int) -> Iterator[None]:
    """Tag an unexpected exception raised while reading page `number` with that page.

    The exception itself is re-raised unchanged (its traceback goes to the log); only
    `describe_failure` reads the tag, so the stored message can name the page to look at.
    """
    try:
        yield
    except Exception as exc:
        if page_of(exc) is None:
            with contextlib.suppress(AttributeError, TypeError):
                exc.pdf_page = number
        raise


def page_of(exc: BaseException) -> int | None:
    """The page an extraction exception was tagged with, if any."""
    page = getattr(exc, "pdf_page", None)
    return page if isinstance(page, int) else None


def clean_text(text: str, limit: int = MAX_DETAIL) -> str:
    """One line without object reprs, memory addresses or file system paths, at most `limit`."""
    text = _OBJECT_REPR.sub(" ", str(text))
    text = _ADDRESS.sub(" ", text)
    text = _PATH.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = re.sub(r"\s+([.,:;)])", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text).replace(".).", ").")
    text = re.sub(r"\s{2,}", " ", text).strip(" :;,")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _mupdf_parts(exc: BaseException) -> tuple[int | None, str]:
    """MuPDF's error class and its own words, from the SWIG exception or a wrapped RuntimeError."""
    code = getattr(exc, "m_code", None)
    text = getattr(exc, "m_text", None)
    if isinstance(code, int) and isinstance(text, str):
        return code, text
    raw = str(exc)
    found = _MUPDF_CODE.match(raw)
    if found:
        return int(found.group(1)), raw[found.end() :]
    return None, raw


def _what(exc: BaseException) -> str:
    if isinstance(exc, PdfError):
        return exc.message
    if isinstance(exc, MemoryError):
        return "ran out of memory (the pages may hold very large images)"
    code, raw = _mupdf_parts(exc)
    detail = clean_text(raw)
    lowered = detail.lower()
    if "password" in lowered or "encrypt" in lowered:
        return "the PDF is encrypted"
    if code == _LIMIT:
        if "image" in lowered:
            return "image too large to decode"
        return f"the PDF exceeds a limit of the PDF reader ({detail})"
    if code in _DAMAGED:
        return f"the file is damaged: {detail}" if detail else "the file is damaged"
    if code == _UNSUPPORTED:
        return f"the PDF uses a feature that cannot be read ({detail})"
    if code == _SYSTEM:
        if "malloc" in lowered or "memory" in lowered:
            return "ran out of memory (the pages may hold very large images)"
        return f"the file could not be read ({detail})"
    if code is not None:
        return f"the PDF reader failed ({detail})"
    if isinstance(exc, OSError):
        return f"the stored file could not be read ({clean_text(exc.strerror or detail)})"
    name = type(exc).__name__
    return f"unexpected {name} ({detail})" if detail else f"unexpected {name}"


def describe_failure(exc: BaseException, *, pages: tuple[int, int] | None = None) -> str:
    """The message a curator reads for a failed extraction: what went wrong in words, where.

    Never an object repr or a path on the server; at most `MAX_MESSAGE` characters. The page
    comes from the exception's tag (see `on_page`) or, failing that, the chunk's `pages`; a
    PdfError's sentence already says where (a page, or the whole file).
    """
    what = clean_text(_what(exc), MAX_MESSAGE)
    page = page_of(exc)
    if page is not None:
        where = f"page {page}"
    elif pages is not None and not isinstance(exc, PdfError):  # a PdfError names its place
        first, last = pages
        where = f"page {first}" if first == last else f"pages {first}-{last}"
    else:
        where = ""
    if not where or what.lower().startswith("page"):
        return what
    return clean_text(f"{where}: {what}", MAX_MESSAGE)
