"""A real ``release`` worker SIGKILLed in the middle of a build.

No half-built release is ever visible or downloadable (API and database), the task that the
killed worker held is redelivered (``acks_late``) to a new worker, which finishes the build,
the manifest verifies file by file, and nothing is duplicated.

The first worker runs with ``killpoint_settings``, which only makes the moment of death
deterministic: half-way through the canonical files, or inside the publishing transaction
after the folder was renamed into place. The test fails (checked by breaking each on purpose)
without ``acks_late`` (the message dies with the worker and the build never finishes), with a
publish that is not one transaction (the row reads ready before the commit point), and when
a killed attempt's folder is not cleared before the redelivered run (that run crashes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from curation.models import Release, ReleaseItem, ReviewEvent
from curation.release.manifest import verify
from curation.services import releases as release_service
from curation.services.errors import ServiceError
from tests.conftest import wait_for

pytestmark = pytest.mark.slow
KILL_AFTER_PAIRS = 5  # the ``writing`` kill point: this many pairs are in the canonical files


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _urls(release_id: int) -> list[str]:
    base = f"/api/releases/{release_id}"
    return [
        f"{base}/archive/",
        f"{base}/manifest/",
        f"{base}/files/manifest.json",
        f"{base}/files/pairs.jsonl",
    ]


def _assert_invisible(release_id: int, ml_worker) -> None:
    """Nothing of the release can be seen or fetched: the database and the API agree."""
    release = Release.objects.get(pk=release_id)
    assert release.status == Release.Status.BUILDING
    assert release.path == "" and release.manifest_sha256 == "" and release.archive_sha256 == ""
    assert not ReleaseItem.objects.filter(release_id=release_id).exists()
    events = ReviewEvent.objects.filter(target_type="release", target_id=release_id)
    assert not events.filter(action="release.built").exists()
    with pytest.raises(ServiceError):
        release_service.ready_root(release)
    row = ml_worker.get(f"/api/releases/{release_id}/").json()
    assert row["status"] == "building" and row["downloadable"] is False
    for url in _urls(release_id):
        response = ml_worker.get(url)
        assert response.status_code == 409, (url, response.status_code)
        assert response.json()["code"] == "not_ready"


@pytest.mark.parametrize("kill_point", ["writing", "publishing"])
def test_worker_killed_mid_build_is_recovered_without_a_half_release_or_duplicates(
    world, release_worker_factory, api_client_for, settings, tmp_path, kill_point
):
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # The embedded broker deletes a message when it is fetched, so it cannot redeliver;
        # CI runs this on Redis (conftest refuses CI without a real broker).
        pytest.skip("needs a broker that redelivers unacknowledged messages")
    shipped = {p.pk for p in world.pairs if p.status in ("accepted", "edited")}
    assert len(shipped) > KILL_AFTER_PAIRS
    gate = tmp_path / "kill-gate"
    # A short visibility timeout so the message the killed worker held comes back quickly.
    first = release_worker_factory(
        DJANGO_SETTINGS_MODULE="tests.releases.killpoint_settings",
        RELEASE_KILL_POINT=kill_point,
        RELEASE_KILL_GATE=str(gate),
        RELEASE_KILL_AFTER_PAIRS=str(KILL_AFTER_PAIRS),
        CELERY_VISIBILITY_TIMEOUT="5",
    )
    curator = api_client_for("curator", username="cur-kill")
    ml_worker = api_client_for("ml_worker", username="ml-kill")
    response = curator.post("/api/releases/", {"name": "mmskin", "version": "1.0.0"}, format="json")
    assert response.status_code == 202, response.content
    release_id = response.json()["id"]
    token = Release.objects.get(pk=release_id).build_token

    wait_for(gate.exists, 60, interval=0.05, message=f"the build to reach {kill_point}")
    pid = int(gate.read_text().split()[0])
    assert os.getpgid(pid) == first.proc.pid  # the first worker's pool process holds the build
    releases = release_service.releases_root()
    attempt = releases / ".building" / f"{release_id}-{token}"
    final = releases / "mmskin" / "1.0.0"
    if kill_point == "writing":
        # Half of the release is on disk, in the attempt's own folder only.
        assert (attempt / "release" / "pairs.jsonl").is_file()
        images = list((attempt / "release" / "images").rglob("*.png"))
        assert 0 < len(images) <= KILL_AFTER_PAIRS
        assert not final.exists()
    else:
        # Every file is written and renamed into place, but the transaction is not committed.
        assert (final / release_service.pipeline.ARCHIVE).is_file()
    _assert_invisible(release_id, ml_worker)

    first.kill()
    _assert_invisible(release_id, ml_worker)

    second = release_worker_factory(CELERY_VISIBILITY_TIMEOUT="5")
    wait_for(
        lambda: Release.objects.filter(pk=release_id, status__in=("ready", "failed")).exists(),
        120,
        message="the redelivered build",
    )
    release = Release.objects.get(pk=release_id)
    assert release.status == Release.Status.READY, release.error
    # The same attempt, redelivered to the new worker: not a rebuild, not a second task.
    assert release.build_token == token
    assert "workers.release.build_release" in second.log_path.read_text()
    actions = list(
        ReviewEvent.objects.filter(target_type="release", target_id=release_id).values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["release.built", "release.created"]
    assert Release.objects.filter(name="mmskin").count() == 1

    # Frozen membership: every shipped pair once.
    members = list(ReleaseItem.objects.filter(release=release).values_list("pair_id", flat=True))
    assert sorted(members) == sorted(shipped)
    # On disk: one version, no attempt left behind, every file as the manifest says.
    assert sorted(p.name for p in (releases / "mmskin").iterdir()) == ["1.0.0"]
    assert not any((releases / ".building").iterdir())
    root = release_service.ready_root(release) / release_service.pipeline.RELEASE_DIR
    assert verify(root) == []
    pairs = [json.loads(line) for line in (root / "pairs.jsonl").open()]
    assert sorted(int(p["id"][1:]) for p in pairs) == sorted(shipped)
    vqa_ids = [json.loads(line)["id"] for line in (root / "vqa.jsonl").open()]
    assert len(vqa_ids) == len(set(vqa_ids)) == release.counts["vqa"]
    images = [p for p in (root / "images").rglob("*") if p.is_file()]
    assert len(images) == release.counts["images"]

    # Over the API: the manifest and the archive, every member checked against the manifest.
    manifest_body = _body(ml_worker.get(f"/api/releases/{release_id}/manifest/"))
    assert hashlib.sha256(manifest_body).hexdigest() == release.manifest_sha256
    manifest = json.loads(manifest_body)
    archive = _body(ml_worker.get(f"/api/releases/{release_id}/archive/"))
    assert hashlib.sha256(archive).hexdigest() == release.archive_sha256
    assert len(archive) == release.archive_size
    prefix = "mmskin-1.0.0/"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        names = tar.getnames()
        assert len(names) == len(set(names))
        assert sorted(names) == sorted(prefix + p for p in [*manifest["files"], "manifest.json"])
        for rel, meta in manifest["files"].items():
            data = tar.extractfile(prefix + rel).read()
            assert len(data) == meta["size"], rel
            assert hashlib.sha256(data).hexdigest() == meta["sha256"], rel
