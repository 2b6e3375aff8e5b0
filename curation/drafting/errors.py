"""Error types that tell a caller what went wrong with a draft and what it cost.

`JunkOutput` means the server answered but the answer is unusable (retrying the prompt may help,
retrying the connection will not); `TransportFailure` means no answer came at all. Both carry
the tokens already spent, because a budget must count what was paid for, not only what was kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost = round(self.cost + other.cost, 8)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class DraftingError(Exception):
    """Base class; `reason` is a short machine-readable word, `usage` what the attempts cost."""

    kind = "error"

    def __init__(self, reason: str, detail: str = "", *, usage: Usage | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.usage = usage or Usage()
        self.attempts = 0


class JunkOutput(DraftingError):
    """The model answered with something unusable: not JSON, wrong schema, empty, refused."""

    kind = "junk"


class TransportFailure(DraftingError):
    """No usable response: timeouts, connection errors, 429/5xx past the retry limit, 4xx."""

    kind = "transport"


class BudgetExhausted(DraftingError):
    """The token or cost budget was spent before this draft was attempted."""

    kind = "budget"
