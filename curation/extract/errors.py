"""The one exception extraction raises for a bad input, with a stable code for the UI."""

from __future__ import annotations

CODES = (
    "empty",
    "not_pdf",
    "corrupt",
    "encrypted",
    "no_pages",
    "too_many_pages",
    "broken_image",
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
