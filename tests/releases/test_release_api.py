"""The API ML workers pull releases from: listing, manifest, resumable downloads, safety."""

from __future__ import annotations

import hashlib
import json

import pytest

from curation.services import releases as release_service


@pytest.fixture
def ready(cut):
    return cut()


@pytest.fixture
def worker(api_client_for):
    return api_client_for("ml_worker")


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_ml_worker_lists_releases_and_reads_the_manifest(ready, worker):
    listing = worker.get("/api/releases/").json()
    assert [r["version"] for r in listing["results"]] == ["1.0.0"]
    assert listing["results"][0]["downloadable"] is True
    response = worker.get(f"/api/releases/{ready.pk}/manifest/", HTTP_ACCEPT="*/*")
    assert response.status_code == 200
    body = _body(response)
    assert hashlib.sha256(body).hexdigest() == ready.manifest_sha256
    assert response["ETag"] == f'"{ready.manifest_sha256}"'
    assert json.loads(body)["counts"]["pairs"] == ready.counts["pairs"]


def test_archive_download_is_resumable_and_byte_identical(ready, worker):
    url = f"/api/releases/{ready.pk}/archive/"
    first = worker.get(url, HTTP_ACCEPT="application/octet-stream")
    assert first.status_code == 200
    whole = _body(first)
    assert len(whole) == ready.archive_size == int(first["Content-Length"])
    assert hashlib.sha256(whole).hexdigest() == ready.archive_sha256 == first["X-Content-SHA256"]
    assert first["Accept-Ranges"] == "bytes"
    assert first["Content-Disposition"] == 'attachment; filename="mmskin-1.0.0.tar"'

    second = _body(worker.get(url))
    assert second == whole  # two downloads of one version are byte-identical

    # An interrupted download resumes from where it stopped.
    cut_at = len(whole) // 3
    part = worker.get(url, HTTP_RANGE=f"bytes={cut_at}-", HTTP_IF_RANGE=first["ETag"])
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes {cut_at}-{len(whole) - 1}/{len(whole)}"
    assert whole[:cut_at] + _body(part) == whole

    middle = worker.get(url, HTTP_RANGE="bytes=10-19")
    assert middle.status_code == 206 and _body(middle) == whole[10:20]
    suffix = worker.get(url, HTTP_RANGE="bytes=-7")
    assert _body(suffix) == whole[-7:]
    beyond = worker.get(url, HTTP_RANGE=f"bytes={len(whole)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(whole)}"
    # If-Range with another version's ETag: the whole (new) file, not a spliced range.
    stale = worker.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"0000"')
    assert stale.status_code == 200 and len(_body(stale)) == len(whole)
    cached = worker.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert cached.status_code == 304


def test_single_files_with_sha256_etags(ready, worker):
    manifest = json.loads(_body(worker.get(f"/api/releases/{ready.pk}/manifest/")))
    for path in ("pairs.jsonl", "formats/sharegpt/dataset_info.json", "DATASET_CARD.md"):
        response = worker.get(f"/api/releases/{ready.pk}/files/{path}")
        assert response.status_code == 200, path
        body = _body(response)
        assert hashlib.sha256(body).hexdigest() == manifest["files"][path]["sha256"]
        assert response["ETag"] == f'"{manifest["files"][path]["sha256"]}"'
    image = next(p for p in manifest["files"] if p.startswith("images/"))
    response = worker.get(f"/api/releases/{ready.pk}/files/{image}", HTTP_RANGE="bytes=0-7")
    assert response.status_code == 206 and _body(response) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "path",
    [
        "../manifest.json",
        "../../../../etc/passwd",
        "images/../../archive.tar",
        "%2e%2e/archive.tar",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "images\\..\\..\\archive.tar",
        "nope.txt",
    ],
)
def test_paths_cannot_escape_the_release(ready, worker, path):
    response = worker.get(f"/api/releases/{ready.pk}/files/{path}")
    assert response.status_code in (400, 404), (path, response.status_code)


def test_a_release_being_built_cannot_be_downloaded(world, worker):
    release = release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)
    for url in (
        f"/api/releases/{release.pk}/archive/",
        f"/api/releases/{release.pk}/manifest/",
        f"/api/releases/{release.pk}/files/pairs.jsonl",
    ):
        response = worker.get(url)
        assert response.status_code == 409, url
        assert response.json()["code"] == "not_ready"


def test_ml_workers_are_read_only(world, worker, api_client_for):
    denied = worker.post("/api/releases/", {"name": "x", "version": "1.0.0"}, format="json")
    assert denied.status_code == 403
    assert worker.post("/api/releases/preview/", {}, format="json").status_code == 403
    expert = api_client_for("expert")
    assert expert.get("/api/releases/").status_code == 403


def test_curator_cuts_previews_and_diffs_over_the_api(world, api_client_for):
    client = api_client_for("curator", username="cur-api")
    preview = client.post(
        "/api/releases/preview/", {"modalities": ["clinical"]}, format="json"
    ).json()
    assert preview["pairs"] > 0 and set(preview["by_modality"]) == {"clinical"}
    response = client.post(
        "/api/releases/",
        {"name": "mmskin", "version": "1.0.0", "split": {"rule": "book", "seed": 3}},
        format="json",
    )
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] == "building" and created["split"]["rule"] == "book"
    release_service.run_build(created["id"], release_service.Release.objects.get(
        pk=created["id"]).build_token)  # fmt: skip
    nxt = client.post(f"/api/releases/{created['id']}/next-version/", {}, format="json").json()
    assert nxt["version"] == "1.1.0" and nxt["parent"]["id"] == created["id"]
    release = release_service.Release.objects.get(pk=nxt["id"])
    release_service.run_build(release.pk, release.build_token)
    diff = client.get(f"/api/releases/{nxt['id']}/diff/").json()
    assert diff["added"] == diff["removed"] == diff["changed"] == []
    rebuild = client.post(f"/api/releases/{created['id']}/rebuild/")
    assert rebuild.status_code == 409


def test_training_runs_are_reported_against_a_release(ready, worker):
    run = worker.post(
        "/api/training-runs/",
        {"release": ready.pk, "stage": "sft", "config": {"train": {"lr": 1e-4}}},
        format="json",
    )
    assert run.status_code == 201, run.content
    claim = worker.post(f"/api/training-runs/{run.json()['id']}/claim/", {"worker": "w1"})
    assert claim.status_code == 200, claim.content
    patch = worker.patch(
        f"/api/training-runs/{run.json()['id']}/",
        {"status": "done", "metrics": {"loss": 0.5}, "artefacts_uri": "s3://runs/1"},
        format="json",
    )
    assert patch.status_code == 200
    assert patch.json()["metrics"] == {"worker": "w1", "loss": 0.5}


def test_the_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/releases/",
        "/api/releases/{id}/",
        "/api/releases/{id}/manifest/",
        "/api/releases/{id}/archive/",
        "/api/releases/{id}/diff/",
        "/api/releases/preview/",
        "/api/releases/{id}/next-version/",
        "/api/releases/{id}/files/{path}",
        "/api/training-runs/",
    ):
        assert path in paths, path
    archive = paths["/api/releases/{id}/archive/"]["get"]
    assert "206" in archive["responses"] and "409" in archive["responses"]
    assert any(p["name"] == "Range" for p in archive["parameters"])
