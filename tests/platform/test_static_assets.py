"""The UI's behaviour and styles live in static files that the package ships."""

import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "curation" / "static"
# Templates rewritten without inline script or style (a strict CSP can then be sent).
CLEAN_TEMPLATES = ["base.html", "review/pair.html", "review/_pair.html", "review/_toast.html"]


def test_package_data_ships_every_static_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["curation"]
    files = [p.relative_to(ROOT / "curation").as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert {"static/curation/base.css", "static/curation/review.js"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert not missing, missing


def test_rewritten_templates_hold_no_inline_script_or_style():
    inline = re.compile(r"<style|style=|<script(?![^>]*\bsrc=)|\son[a-z]+=", re.IGNORECASE)
    for name in CLEAN_TEMPLATES:
        text = (ROOT / "frontend_templates" / name).read_text()
        assert not inline.search(text), (name, inline.search(text).group(0))


def test_the_review_page_loads_its_static_files(client, make_user, db):
    from tests.factories import make_book, make_pairs

    pair = make_pairs(make_book(), 1)[0]
    client.force_login(make_user("ann", "expert"))
    html = client.get(f"/review/pairs/{pair.pk}/").content.decode()
    for asset in ("curation/base.css", "curation/base.js", "curation/review.css",
                  "curation/review.js"):  # fmt: skip
        assert f"/static/{asset}" in html
    assert html.count("<h1") == 1 and 'class="skip-link" href="#main-content"' in html
    assert '<meta name="htmx-config"' in html
