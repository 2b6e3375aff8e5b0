"""Small cross-cutting middleware."""

from __future__ import annotations

import time


class ServerTimingMiddleware:
    """Adds ``Server-Timing: app;dur=<ms>`` so latency is measurable without the client's noise.

    Browsers show it in their network panel; the review benchmark reads it.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response
