"""The Content-Security-Policy: sent on every response, and no template needs an exception to it.

The header alone proves little: a policy with 'unsafe-inline' or a page whose inline script it
blocks are both failures. So the policy is checked for what it forbids, and every template is
scanned for what the policy would block (inline script, style elements and attributes, event
handler attributes, javascript: URLs). The browser walk in tests/e2e/test_csp_pages.py checks
that no page actually reports a violation.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [ROOT / "frontend_templates", *(ROOT / "curation").glob("**/templates")]

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
PROBLEMS = {
    "inline <script>": INLINE_SCRIPT,
    "<style> element": re.compile(r"<style[\s>]", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event-handler attribute": re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I),
    "hx-on attribute (evaluated code)": re.compile(r"\shx-on[:-]", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def templates():
    for folder in TEMPLATE_DIRS:
        yield from sorted(folder.rglob("*.html"))


def test_the_scan_sees_every_template_and_catches_each_problem():
    names = {p.name for p in templates()}
    assert {"base.html", "pair.html", "dashboard.html", "403.html"} <= names
    samples = {
        "inline <script>": "<script>alert(1)</script>",
        "<style> element": "<style>p{}</style>",
        "style attribute": '<p style="color:red">',
        "event-handler attribute": '<button onclick="go()">',
        "hx-on attribute (evaluated code)": '<form hx-on::after-request="x()">',
        "javascript: URL": '<a href="javascript:void(0)">',
    }
    for name, sample in samples.items():
        assert PROBLEMS[name].search(sample), name
    assert not INLINE_SCRIPT.search('<script src="/static/x.js" defer></script>')
    assert not INLINE_SCRIPT.search('<script type="application/json" id="d">{}</script>')


def test_no_template_holds_what_the_policy_blocks():
    found = []
    for path in templates():
        text = path.read_text()
        for name, pattern in PROBLEMS.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not found, "\n".join(found)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/docs/", "/nowhere/", "/healthz"])
def test_every_response_carries_a_strict_policy(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_the_api_docs_load_their_start_up_code_from_a_script_file(client):
    html = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in html
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
