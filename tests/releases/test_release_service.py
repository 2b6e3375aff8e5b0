"""Cutting, building, publishing and versioning releases through the service."""

from __future__ import annotations

import json

import pytest

from curation.models import Release, ReleaseItem, ReviewEvent
from curation.release.manifest import verify
from curation.services import releases as release_service
from curation.services.errors import Conflict, ServiceError


def _root(release):
    return release_service.ready_root(release) / "release"


def test_a_built_release_is_ready_frozen_and_verifies(world, cut):
    release = cut(description="first cut")
    assert release.status == "ready", release.error
    shipped = [p for p in world.pairs if p.status in ("accepted", "edited")]
    assert release.counts["pairs"] == len(shipped)
    assert set(ReleaseItem.objects.filter(release=release).values_list("pair_id", flat=True)) == {
        p.pk for p in shipped
    }
    root = _root(release)
    assert verify(root) == []
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["name"] == "mmskin" and manifest["version"] == "1.0.0"
    assert manifest["created_by"] == "cur" and manifest["parent"] is None
    assert manifest["filter"]["statuses"] == ["accepted", "edited"]
    # preferences: one edit and one rejection with a better answer; not the bare rejection
    assert release.counts["preferences_by_source"] == {"expert_edit": 1, "expert_reject": 1}
    assert ReviewEvent.objects.filter(target_id=release.pk, action="release.built").exists()
    assert not (release_service.releases_root() / ".building").exists() or not any(
        (release_service.releases_root() / ".building").iterdir()
    )


def test_splits_keep_figures_together(world, cut):
    release = cut()
    items = ReleaseItem.objects.filter(release=release).select_related("pair__panel")
    by_figure: dict[int, set] = {}
    for item in items:
        by_figure.setdefault(item.pair.panel.figure_id, set()).add(item.split)
    assert all(len(s) == 1 for s in by_figure.values())


def test_filter_by_modality_book_and_min_reviews(world, cut):
    from curation.models import Review

    release = cut(filter={"modalities": ["dermoscopic"], "books": [world.books[1].pk]})
    assert release.counts["pairs_by_modality"].keys() == {"dermoscopic"}
    assert [b["id"] for b in release.counts["books"]] == [world.books[1].pk]
    assert release_service.preview({"min_reviews": 1})["pairs"] == 0
    pair = world.pairs[0]
    Review.objects.create(
        item_id=pair.pk, textbook=pair.textbook, expert=world.curator, decision="accepted"
    )
    assert release_service.preview({"min_reviews": 1})["pairs"] == 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "Bad Name"}, "bad_name"),
        ({"version": "1.0"}, "bad_version"),
        ({"filter": {"statuses": ["proposed"]}}, "bad_filter"),
        ({"filter": {"modalities": ["xray"]}}, "bad_filter"),
        ({"filter": {"reviewed_from": "2026-02-01", "reviewed_to": "2026-01-01"}}, "bad_filter"),
        ({"filter": {"colour": "red"}}, "bad_filter"),
        ({"split": {"rule": "question"}}, "bad_split"),
        ({"filter": {"books": [987654]}}, "bad_filter"),
    ],
)
def test_bad_input_is_refused(world, kwargs, code):
    args = {"name": "mmskin", "version": "1.0.0", "user": world.curator, **kwargs}
    with pytest.raises(ServiceError) as exc:
        release_service.create_release(**args)
    assert exc.value.code == code


def test_an_empty_selection_and_a_duplicate_version_are_refused(world, cut):
    with pytest.raises(ServiceError) as exc:
        release_service.create_release(
            name="x", version="1.0.0", user=world.curator,
            filter={"reviewed_from": "2100-01-01"},
        )  # fmt: skip
    assert exc.value.code == "empty"
    cut()
    with pytest.raises(Conflict):
        release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)


def test_a_ready_release_is_immutable(world, cut):
    release = cut()
    with pytest.raises(Conflict) as exc:
        release_service.rebuild_release(release.pk, world.curator)
    assert exc.value.code == "immutable"
    # A late or redelivered task of the finished build changes nothing.
    assert release_service.run_build(release.pk, release.build_token) is False


def test_two_versions_with_an_edit_between_diff_and_keep_splits(world, cut):
    from curation import selectors

    v1 = cut()
    splits_v1 = dict(ReleaseItem.objects.filter(release=v1).values_list("pair_id", "split"))
    edited = world.pairs[3]
    edited.text = "Corrected caption by an expert"
    edited.status = "edited"
    edited.save()
    removed = world.pairs[5]
    removed.status = "rejected"
    removed.save()
    added = world.add_pair(world.books[2], "7.7", seed=777)[0]

    v2 = release_service.create_next_version(v1.pk, world.curator)
    assert v2.version == "1.1.0" and v2.parent_id == v1.pk and v2.filter == v1.filter
    release_service.run_build(v2.pk, v2.build_token)
    v2.refresh_from_db()
    assert v2.status == "ready", v2.error

    diff = selectors.releases.diff(v1, v2)
    assert diff.added == [added.pk]
    assert diff.removed == [removed.pk]
    assert diff.changed == [edited.pk]
    assert diff.moved == []
    splits_v2 = dict(ReleaseItem.objects.filter(release=v2).values_list("pair_id", "split"))
    assert all(splits_v2[p] == s for p, s in splits_v1.items() if p in splits_v2)
    manifest = json.loads((_root(v2) / "manifest.json").read_text())
    assert manifest["parent"] == {
        "name": "mmskin", "version": "1.0.0", "manifest_sha256": v1.manifest_sha256,
    }  # fmt: skip
    assert verify(_root(v1)) == [] and verify(_root(v2)) == []


def test_a_failed_build_leaves_nothing_visible_and_can_be_rebuilt(world, cut, monkeypatch):
    from curation.release import writer

    real_add = writer.ReleaseWriter.add
    calls = {"n": 0}

    def flaky(self, pair, split):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real_add(self, pair, split)

    monkeypatch.setattr(writer.ReleaseWriter, "add", flaky)
    release = cut()
    assert release.status == "failed" and "disk full" in release.error
    assert not ReleaseItem.objects.filter(release=release).exists()
    assert not (release_service.releases_root() / "mmskin" / "1.0.0").exists()
    assert not any((release_service.releases_root() / ".building").glob("*"))
    with pytest.raises(ServiceError):
        release_service.ready_root(release)

    monkeypatch.setattr(writer.ReleaseWriter, "add", real_add)
    release = release_service.rebuild_release(release.pk, world.curator)
    assert release_service.run_build(release.pk, release.build_token)
    release.refresh_from_db()
    assert release.status == "ready" and verify(_root(release)) == []


def test_a_killed_build_is_restarted_cleanly_by_its_redelivered_task(world, cut):
    release = release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)
    # What a SIGKILLed worker leaves: a half-written folder of this very attempt.
    leftover = release_service.releases_root() / ".building" / f"{release.pk}-{release.build_token}"
    (leftover / "release" / "images").mkdir(parents=True)
    (leftover / "release" / "pairs.jsonl").write_text('{"half": ')
    with pytest.raises(ServiceError):
        release_service.ready_root(release)
    assert release_service.run_build(release.pk, release.build_token)
    release.refresh_from_db()
    assert release.status == "ready" and verify(_root(release)) == []
    assert not leftover.exists()


def test_a_superseded_attempt_does_not_publish(world):
    release = release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)
    old_token = release.build_token
    release = release_service.rebuild_release(release.pk, world.curator)
    assert release_service.run_build(release.pk, old_token) is False
    assert Release.objects.get(pk=release.pk).status == "building"


def test_the_build_runs_as_a_celery_task_after_commit(
    world, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        release = release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)
    release.refresh_from_db()
    assert release.status == "ready", release.error


def test_crops_in_the_media_storage_are_hard_linked_not_copied(world, cut):
    from django.core.files.storage import default_storage

    from curation.models import Pair

    release = cut()
    root = _root(release)
    for line in (root / "pairs.jsonl").open():
        record = json.loads(line)
        crop = Pair.objects.get(pk=int(record["id"][1:])).panel.image
        source = default_storage.path(crop)
        assert (root / record["image"]).samefile(source), record["id"]
    assert verify(root) == []


def test_an_attempt_folder_that_cannot_be_made_fails_the_build_visibly(world):
    release = release_service.create_release(name="mmskin", version="1.0.0", user=world.curator)
    building = release_service.releases_root() / ".building"
    building.mkdir(parents=True)
    # A file where the attempt's folder goes: it cannot be cleared away nor made a folder.
    (building / f"{release.pk}-{release.build_token}").write_text("in the way")
    assert release_service.run_build(release.pk, release.build_token) is False
    release.refresh_from_db()
    assert release.status == "failed" and "FileExistsError" in release.error
