"""What the browser refused under the Content-Security-Policy, as the page runs."""


def watch_refusals(page) -> list[str]:
    """The console messages of every CSP refusal from now on (the list fills as they come)."""
    refused: list[str] = []
    page.on(
        "console",
        lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return refused
