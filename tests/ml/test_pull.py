"""`ml pull` against a live platform: a release cut by the platform's own service, downloaded
over HTTP, resumed after an interruption, and refused when a file was tampered with."""

from __future__ import annotations

import hashlib
import json

import pytest

from ml.cli import main
from ml.client import ApiError, PlatformClient, pull_release
from ml.release import Release

pytestmark = pytest.mark.django_db(transaction=True)


class _Dropping:
    """A response that delivers `cut` bytes and then loses the connection."""

    def __init__(self, resp, cut: int) -> None:
        self._resp, self._left = resp, cut

    def __getattr__(self, name):
        return getattr(self._resp, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._resp.close()

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise ConnectionResetError("test: connection dropped")
        block = self._resp.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(block)
        return block


class FlakyClient(PlatformClient):
    """Drops the first transfer of `victim` halfway and records every request's headers."""

    def __init__(self, *args, victim: str, cut: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.victim, self.cut, self.seen = victim, cut, []

    def open(self, path, method="GET", body=None, headers=None, params=None):
        resp = super().open(path, method=method, body=body, headers=headers, params=params)
        if path.startswith(self.victim) or path.endswith(self.victim):
            self.seen.append(dict(headers or {}))
            if len(self.seen) == 1:
                return _Dropping(resp, self.cut)
        return resp


def _pull_args(live_server, token, release, out, *extra):
    return [
        "pull", "--url", live_server.url, "--token", token, "--release", release,
        "--out", str(out), *extra,
    ]  # fmt: skip


def _manifest(release):
    from curation.services import releases as release_service

    return json.loads(release_service.release_file(release, "manifest.json").read_text("utf-8"))


def test_pull_interrupted_then_resumed_verifies(
    live_server, platform_release, worker_token, tmp_path, capsys
):
    files = _manifest(platform_release)["files"]
    victim, meta = max(files.items(), key=lambda kv: kv[1]["size"])
    out = tmp_path / "rel"
    # First attempt: the biggest file's connection drops halfway and retries are off.
    client = FlakyClient(
        live_server.url, worker_token, retries=0, victim=victim, cut=meta["size"] // 2
    )
    with pytest.raises(ApiError, match="download failed"):
        pull_release(client, "skin@1.0.0", out, jobs=1)
    part = out / (victim + ".part")
    assert part.stat().st_size == meta["size"] // 2
    assert not (out / victim).exists() and not (out / "manifest.json").exists()

    # Second attempt (the CLI): verified files are kept, the .part resumes with a Range.
    assert main(_pull_args(live_server, worker_token, "skin@1.0.0", out)) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["resumed_files"] == 1 and report["files"] == len(files)
    assert report["skipped"] >= 1  # files finished before the drop were not fetched again
    got = (out / victim).read_bytes()
    assert hashlib.sha256(got).hexdigest() == meta["sha256"]
    assert not list(out.rglob("*.part"))
    release = Release(out)  # verifies every file against the manifest
    assert release.name == "skin@1.0.0"
    assert release.pairs("train") and release.vqa("test") and release.preferences("train")

    # Pulling again transfers nothing.
    assert main(_pull_args(live_server, worker_token, str(platform_release.pk), out)) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["skipped"] == len(files) and again["downloaded_bytes"] == 0


def test_pull_archive_resumes_within_one_run(live_server, platform_release, worker_token, tmp_path):
    client = FlakyClient(
        live_server.url,
        worker_token,
        retries=2,
        backoff_s=0.0,
        victim="archive/",
        cut=platform_release.archive_size // 3,
    )
    report = pull_release(client, "skin", tmp_path / "rel", archive=True)
    assert report.mode == "archive" and report.resumed_files == 1
    assert client.seen[1]["Range"] == f"bytes={platform_release.archive_size // 3}-"
    assert client.seen[1]["If-Range"] == f'"{platform_release.archive_sha256}"'
    Release(tmp_path / "rel")
    assert not list((tmp_path / "rel").glob(".release-*"))


def test_tampered_file_is_refused(live_server, platform_release, worker_token, tmp_path, capsys):
    from curation.services import releases as release_service

    path = release_service.release_file(platform_release, "vqa.jsonl")
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01  # same size, different bytes
    path.write_bytes(bytes(data))
    out = tmp_path / "rel"
    rc = main(_pull_args(live_server, worker_token, "skin@1.0.0", out))
    err = capsys.readouterr().err
    assert rc == 1
    assert "does not verify" in err and "vqa.jsonl" in err and "sha256" in err
    assert not (out / "vqa.jsonl").exists() and (out / "vqa.jsonl.part").exists()
    assert not (out / "manifest.json").exists()  # no folder that looks like a release
    # Every file that did verify is under its own name; nothing unverified is.
    assert (out / "pairs.jsonl").is_file()


def test_bad_token_and_unknown_release_fail_clearly(
    live_server, platform_release, worker_token, tmp_path, capsys
):
    assert main(_pull_args(live_server, "not-a-token", "skin@1.0.0", tmp_path)) == 1
    assert "Invalid token" in capsys.readouterr().err
    assert main(_pull_args(live_server, worker_token, "skin@9.9.9", tmp_path)) == 1
    assert "no release 'skin@9.9.9'" in capsys.readouterr().err
