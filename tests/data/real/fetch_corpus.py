"""Build the real-PDF corpus's documents from git mirrors of their source repositories.

The documents whose licence allows it are committed under `corpus/`; the others are only
cut here, for the benchmark, into `cache/` (ignored by git). Each document is the source PDF at
the commit and path named in `manifest.json`, cut to `pages_kept` with PyMuPDF's `insert_pdf`,
which copies the producer's page objects (fonts, images, content streams) unchanged, and with
the source's metadata (so /Producer and /Creator still say who made it).

Run: `python tests/data/real/fetch_corpus.py [--mirrors /work/.mirror] [--rebuild-committed]`.
A mirror is a bare git repository at MIRRORS/<owner>+<name>/repo (what the sessions' fetch
tool makes); pass `--git-dir-of owner/name=PATH` for one cloned elsewhere.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
CORPUS = HERE / "corpus"
CACHE = HERE / "cache"


def load_manifest() -> list[dict]:
    """The corpus documents, in manifest order."""
    return json.loads(MANIFEST.read_text("utf-8"))["documents"]


def pdf_path(doc: dict) -> Path:
    """Where a document's cut PDF lives: committed ones in corpus/, the others in cache/."""
    return (CORPUS if doc["committed"] else CACHE) / f"{doc['id']}.pdf"


def ranges(pages: list[int]) -> list[tuple[int, int]]:
    """1-based page numbers as contiguous 0-based (first, last) runs for insert_pdf."""
    runs: list[tuple[int, int]] = []
    for p in sorted(pages):
        if runs and runs[-1][1] == p - 2:
            runs[-1] = (runs[-1][0], p - 1)
        else:
            runs.append((p - 1, p - 1))
    return runs


def cut(source: bytes, pages: list[int]) -> bytes:
    """The pages kept of a source PDF, with the producer's objects and metadata."""
    src = pymupdf.open(stream=source, filetype="pdf")
    out = pymupdf.open()
    for first, last in ranges(pages):
        out.insert_pdf(src, from_page=first, to_page=last)
    out.set_metadata({k: v for k, v in src.metadata.items() if v and k != "format"})
    data = out.tobytes(garbage=3, deflate=True)
    out.close()
    src.close()
    return data


def read_blob(git_dir: Path, commit: str, path: str) -> bytes:
    """A file's bytes at a commit of a bare repository."""
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
    ).stdout


def build(doc: dict, git_dir: Path) -> Path:
    """Cut one document from its mirror into its place; returns the path."""
    target = pdf_path(doc)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cut(read_blob(git_dir, doc["commit"], doc["path"]), doc["pages_kept"]))
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mirrors", default="/work/.mirror", help="folder of <owner>+<name>/repo")
    ap.add_argument("--git-dir-of", action="append", default=[], metavar="OWNER/NAME=PATH")
    ap.add_argument("--rebuild-committed", action="store_true")
    args = ap.parse_args(argv)
    explicit = dict(item.split("=", 1) for item in args.git_dir_of)
    missing = 0
    for doc in load_manifest():
        if doc["committed"] and not args.rebuild_committed:
            continue
        repo = doc["repository"]
        git_dir = Path(explicit.get(repo, Path(args.mirrors) / repo.replace("/", "+") / "repo"))
        if not git_dir.exists():
            print(f"skip {doc['id']}: no mirror of {repo} at {git_dir}", file=sys.stderr)
            missing += 1
            continue
        print(f"{doc['id']}: {build(doc, git_dir)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
