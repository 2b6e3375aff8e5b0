"""The platform's REST API as a GPU worker sees it: find a release, download it, verify it.

Standard library only (urllib): a GPU machine installs `ml` with torch alone, and `ml` never
imports Django. Every download goes to `FILE.part` first and is renamed only once its size and
sha256 match the manifest, so a file under its final name is always a verified one. An
interrupted download resumes from its `.part` with an HTTP Range request guarded by `If-Range`
(the file's sha256 ETag), so bytes of another version are never spliced in.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ml.release import SUPPORTED_SCHEMA_VERSIONS, ReleaseError, sha256_file

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# Errors after which a download is retried (resuming from its .part), not given up.
TRANSIENT = (
    urllib.error.URLError,
    http.client.HTTPException,  # IncompleteRead, RemoteDisconnected, ...
    ConnectionError,
    TimeoutError,
    socket.timeout,
)


class ApiError(Exception):
    """The platform answered with an HTTP error (or not at all)."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        """The platform's machine-readable refusal (`{"code": ...}`), e.g. `cancelled`."""
        try:
            data = json.loads(self.body) if self.body else None
        except ValueError:
            return None
        code = data.get("code") if isinstance(data, dict) else None
        return code if isinstance(code, str) else None


class VerificationError(ReleaseError):
    """A downloaded file does not match the manifest (size or sha256)."""


def api_base(url: str) -> str:
    """`http://host:8000` or `http://host:8000/api` -> `http://host:8000/api/`."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"platform URL must start with http:// or https://, got {url!r}")
    if not url.endswith("/api"):
        url += "/api"
    return url + "/"


class PlatformClient:
    """A token-authenticated client of `/api/` (DRF `Authorization: Token ...`)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self.base = api_base(url)
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        """Absolute URL of an API path (or an absolute URL, e.g. a `next` page, unchanged)."""
        full = path if path.startswith(("http://", "https://")) else self.base + path.lstrip("/")
        if params:
            full += ("&" if "?" in full else "?") + urllib.parse.urlencode(params)
        return full

    def open(
        self,
        path: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> http.client.HTTPResponse:
        """Send one request; HTTP errors become `ApiError` with the platform's message."""
        data = None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Token {self.token}"
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.url(path, params), data=data, headers=all_headers, method=method
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # http(s) only (api_base)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")[:2000]
            raise ApiError(
                f"{method} {request.full_url} -> HTTP {exc.code}: {_detail(text)}",
                status=exc.code,
                body=text,
            ) from None

    def json(self, path: str, method: str = "GET", body: Any = None, **kw: Any) -> Any:
        """A JSON request, retried on connection errors (every call here is idempotent)."""
        for attempt in range(self.retries + 1):
            try:
                with self.open(path, method=method, body=body, **kw) as resp:
                    raw = resp.read()
                return json.loads(raw) if raw else None
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise ApiError(f"{method} {self.url(path)}: {exc}") from exc
                self._sleep(attempt, exc)
        raise AssertionError("unreachable")

    def paged(self, path: str, params: dict[str, Any] | None = None, max_pages: int = 100):
        """Every row of a (DRF page-number paginated or plain list) listing."""
        page: Any = self.json(path, params=params)
        for _ in range(max_pages):
            if isinstance(page, list):
                yield from page
                return
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.json(page["next"])

    def _sleep(self, attempt: int, exc: BaseException) -> None:
        delay = self.backoff_s * (2**attempt)
        log.warning("transient error (%s); retrying in %.1fs", exc, delay)
        time.sleep(delay)


def _detail(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        for key in ("detail", "message", "error"):
            if key in data:
                return str(data[key])
    return text[:300]


# -- releases -----------------------------------------------------------------------------------
def resolve_release(client: PlatformClient, spec: str) -> dict[str, Any]:
    """A release row from `ID`, `NAME@VERSION`, or `NAME` (its newest downloadable version)."""
    spec = spec.strip()
    if spec.isdigit():
        return client.json(f"releases/{int(spec)}/")
    name, _, version = spec.partition("@")
    params = {"name": name}
    if version and version != "latest":
        params["version"] = version
    rows = list(client.paged("releases/", params))
    if version and version != "latest":
        rows = [r for r in rows if r.get("name") == name and str(r.get("version")) == version]
        if not rows:
            raise ReleaseError(f"no release {spec!r} on {client.base}")
        return rows[0]
    rows = [r for r in rows if r.get("name") == name and r.get("downloadable")]
    if not rows:
        raise ReleaseError(f"no downloadable release named {name!r} on {client.base}")
    return max(rows, key=lambda r: (r.get("created_at") or "", r.get("id") or 0))


@dataclass
class FileResult:
    """How one file was obtained."""

    path: str
    downloaded: int = 0  # bytes transferred now
    resumed_from: int = 0  # bytes already in the .part when the transfer started
    requests: int = 0
    skipped: bool = False  # already present and verified


@dataclass
class PullReport:
    """What `pull` did, printed as JSON by the CLI."""

    release: str
    release_id: int
    out: str
    manifest_sha256: str
    files: int = 0
    skipped: int = 0
    downloaded_bytes: int = 0
    resumed_files: int = 0
    requests: int = 0
    mode: str = "files"
    problems: list[str] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.files += 1
        self.skipped += int(result.skipped)
        self.downloaded_bytes += result.downloaded
        self.resumed_files += int(result.resumed_from > 0)
        self.requests += result.requests

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def part_path(dest: Path) -> Path:
    """Where an unverified download of `dest` lives."""
    return dest.with_name(dest.name + ".part")


def _hash_prefix(path: Path, digest: Any) -> int:
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size


def download_file(
    client: PlatformClient, api_path: str, dest: Path, *, sha256: str, size: int, label: str = ""
) -> FileResult:
    """Download `api_path` to `dest` via `dest.part`, resuming, and verify size and sha256.

    Transient network errors are retried from where the `.part` stopped. A file that arrives
    complete but with the wrong sha256 is fetched once more from scratch when it had been
    resumed (the old `.part` may have been bad); then it is refused and left as `.part`.
    """
    label = label or api_path
    result = FileResult(label)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    restarted = False
    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        digest = hashlib.sha256()
        if have:
            _hash_prefix(part, digest)
        started_with = have
        if have < size or size == 0:
            headers = {"Accept": "application/octet-stream"}
            if have:
                headers["Range"] = f"bytes={have}-"
                headers["If-Range"] = f'"{sha256}"'
                result.resumed_from = max(result.resumed_from, have)
            try:
                result.requests += 1
                with client.open(api_path, headers=headers) as resp:
                    mode = "ab"
                    if have and resp.status != 206:  # the server sent the whole file instead
                        digest, have, mode = hashlib.sha256(), 0, "wb"
                    elif have:
                        expected = f"bytes {have}-"
                        if not resp.headers.get("Content-Range", "").startswith(expected):
                            raise ApiError(
                                f"{label}: asked for bytes {have}- but got "
                                f"{resp.headers.get('Content-Range')!r}"
                            )
                    with open(part, mode) as fh:
                        while block := resp.read(CHUNK):
                            fh.write(block)
                            digest.update(block)
                            have += len(block)
                            result.downloaded += len(block)
            except ApiError as exc:
                if exc.status == 416 and have:  # our .part no longer fits the file: restart
                    part.unlink()
                    continue
                raise
            except TRANSIENT as exc:
                failures += 1
                if failures > client.retries:
                    raise ApiError(
                        f"{label}: download failed after {failures} tries: {exc}"
                    ) from exc
                client._sleep(failures - 1, exc)
                continue
        if have < size:  # the connection closed early without an error
            failures += 1
            if failures > client.retries:
                raise ApiError(f"{label}: got {have} of {size} bytes after {failures} tries")
            continue
        got = digest.hexdigest()
        if have == size and got == sha256:
            os.replace(part, dest)
            return result
        if started_with and not restarted:
            log.warning("%s: resumed download does not verify; fetching it again", label)
            part.unlink()
            restarted = True
            continue
        raise VerificationError(
            f"{label}: size {have}, sha256 {got}; the manifest says size {size}, sha256 "
            f"{sha256} (kept as {part.name})"
        )


def _safe_relpath(rel: str) -> str:
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel or not rel or rel.endswith("/"):
        raise ReleaseError(f"manifest path {rel!r} is not a plain relative path")
    return str(pure)


def _load_manifest(raw: bytes, expected_sha256: str | None) -> dict[str, Any]:
    got = hashlib.sha256(raw).hexdigest()
    if expected_sha256 and got != expected_sha256:
        raise VerificationError(
            f"manifest.json: sha256 {got} != the release's manifest_sha256 {expected_sha256}"
        )
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ReleaseError(f"manifest.json is not JSON: {exc}") from exc
    if manifest.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise ReleaseError(
            f"schema_version {manifest.get('schema_version')!r} not supported "
            f"(known {SUPPORTED_SCHEMA_VERSIONS})"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ReleaseError("manifest.json has no 'files' mapping")
    for rel in files:
        _safe_relpath(rel)
    return manifest


def _already_verified(dest: Path, meta: dict[str, Any]) -> bool:
    return (
        dest.is_file()
        and dest.stat().st_size == int(meta["size"])
        and sha256_file(dest) == meta["sha256"]
    )


def pull_release(
    client: PlatformClient,
    spec: str,
    out: str | Path,
    *,
    archive: bool = False,
    jobs: int = 4,
) -> PullReport:
    """Download release `spec` into `out` and verify every file against its manifest.

    `manifest.json` is written last, so a folder with a manifest is a complete, verified
    release; `Release(out)` then reads it. Files already present and verified are skipped, so
    pulling again (after an interruption, or to refresh) only fetches what is missing.
    """
    out = Path(out)
    row = resolve_release(client, spec)
    label = f"{row.get('name')}@{row.get('version')}"
    if row.get("status") != "ready" and not row.get("downloadable"):
        raise ReleaseError(f"release {label} is {row.get('status')!r}, not ready to download")
    rid = int(row["id"])
    with client.open(f"releases/{rid}/manifest/", headers={"Accept": "*/*"}) as resp:
        raw = resp.read()
    manifest = _load_manifest(raw, row.get("manifest_sha256"))
    out.mkdir(parents=True, exist_ok=True)
    final_manifest = out / "manifest.json"
    if final_manifest.is_file() and final_manifest.read_bytes() != raw:
        raise ReleaseError(f"{out} already holds another release; pull into an empty folder")
    report = PullReport(
        release=label,
        release_id=rid,
        out=str(out),
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        mode="archive" if archive else "files",
    )
    files: dict[str, dict[str, Any]] = manifest["files"]
    todo = {rel: meta for rel, meta in files.items() if not _already_verified(out / rel, meta)}
    for rel in sorted(set(files) - set(todo)):
        report.add(FileResult(rel, skipped=True))
    if todo and archive:
        _pull_archive(client, row, out, files, todo, report)
    elif todo:
        _pull_files(client, rid, out, todo, report, jobs)
    if report.problems:
        shown = "; ".join(report.problems[:10])
        more = f" (and {len(report.problems) - 10} more)" if len(report.problems) > 10 else ""
        raise VerificationError(f"release {label} does not verify: {shown}{more}")
    tmp = part_path(final_manifest)
    tmp.write_bytes(raw)
    os.replace(tmp, final_manifest)
    return report


def _pull_files(
    client: PlatformClient,
    rid: int,
    out: Path,
    todo: dict[str, dict[str, Any]],
    report: PullReport,
    jobs: int,
) -> None:
    def one(item: tuple[str, dict[str, Any]]) -> FileResult | str:
        rel, meta = item
        quoted = urllib.parse.quote(rel)
        try:
            return download_file(
                client,
                f"releases/{rid}/files/{quoted}",
                out / rel,
                sha256=meta["sha256"],
                size=int(meta["size"]),
                label=rel,
            )
        except VerificationError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for res in pool.map(one, sorted(todo.items())):
            if isinstance(res, str):
                report.problems.append(res)
            else:
                report.add(res)


def _pull_archive(
    client: PlatformClient,
    row: dict[str, Any],
    out: Path,
    files: dict[str, dict[str, Any]],
    todo: dict[str, dict[str, Any]],
    report: PullReport,
) -> None:
    """The whole release as one tar (fewer requests for many small images), then unpacked."""
    rid = int(row["id"])
    tar_path = out / f".release-{rid}.tar"
    res = download_file(
        client,
        f"releases/{rid}/archive/",
        tar_path,
        sha256=row["archive_sha256"],
        size=int(row["archive_size"]),
        label="archive",
    )
    report.downloaded_bytes += res.downloaded
    report.requests += res.requests
    report.resumed_files += int(res.resumed_from > 0)
    prefix = f"{row.get('name')}-{row.get('version')}/"
    seen: set[str] = set()
    with tarfile.open(tar_path, "r:") as tar:
        for member in tar:
            if not member.isfile():
                if member.isdir():
                    continue
                raise ReleaseError(f"archive member {member.name!r} is not a regular file")
            if not member.name.startswith(prefix):
                raise ReleaseError(f"archive member {member.name!r} is outside {prefix}")
            rel = _safe_relpath(member.name[len(prefix) :])
            if rel == "manifest.json":
                continue
            if rel not in files:
                report.problems.append(f"{rel}: in the archive but not in the manifest")
                continue
            seen.add(rel)
            if rel not in todo:
                continue
            meta = files[rel]
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = part_path(dest)
            digest = hashlib.sha256()
            src = tar.extractfile(member)
            assert src is not None
            with src, open(part, "wb") as fh:
                while block := src.read(CHUNK):
                    fh.write(block)
                    digest.update(block)
            size = part.stat().st_size
            if size != int(meta["size"]) or digest.hexdigest() != meta["sha256"]:
                report.problems.append(
                    f"{rel}: size {size}, sha256 {digest.hexdigest()}; the manifest says size "
                    f"{meta['size']}, sha256 {meta['sha256']} (kept as {part.name})"
                )
                continue
            os.replace(part, dest)
            report.add(FileResult(rel))
    for rel in sorted(set(todo) - seen):
        report.problems.append(f"{rel}: missing from the archive")
    if not report.problems:
        tar_path.unlink()


def remove_partials(out: Path) -> int:
    """Delete every `.part` under `out` (a clean retry from scratch); returns how many."""
    n = 0
    for path in Path(out).rglob("*.part"):
        path.unlink()
        n += 1
    return n


__all__ = [
    "ApiError",
    "PlatformClient",
    "PullReport",
    "VerificationError",
    "download_file",
    "pull_release",
    "remove_partials",
    "resolve_release",
]
