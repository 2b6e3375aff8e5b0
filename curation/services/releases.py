"""Cutting dataset releases: validate the filter, build in the background, publish atomically.

A release is built by ``run_build`` (called by the ``release`` queue's task) in a folder of
its own under ``releases/.building/``. Only when every file, the manifest and the archive are
written does one transaction, under the release's row lock, rename that folder into place,
freeze the membership in ``ReleaseItem`` rows and mark the release ready. A failed or killed
build leaves no visible half release; running it again starts from scratch. A ready release
never changes: a new version is a new release with ``parent`` set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from datetime import UTC, date
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from curation import limits
from curation import release as pipeline
from curation.events import EventAction
from curation.models import Modality, Pair, Release, ReleaseItem, Textbook
from curation.selectors import releases as select
from curation.services import dispatch
from curation.services.audit import record_event
from curation.services.errors import Conflict, ServiceError

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
VERSION_RE = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
DEFAULT_STATUSES = [Pair.Status.ACCEPTED, Pair.Status.EDITED]
RELEASABLE_STATUSES = {Pair.Status.ACCEPTED, Pair.Status.EDITED}
ITEMS_FILE = "items.tsv"
_ITEM_BATCH = 2000
_PROGRESS_EVERY_S = 0.5


class ReleaseNotReady(Conflict):
    pass


# -- validation ----------------------------------------------------------------------------
def normalize_filter(raw: dict | None) -> dict:
    """A filter in its one canonical shape, or a ServiceError naming what is wrong."""
    raw = dict(raw or {})
    unknown = set(raw) - {
        "statuses", "modalities", "books", "reviewed_from", "reviewed_to", "min_reviews",
    }  # fmt: skip
    if unknown:
        raise ServiceError("bad_filter", f"Unknown filter keys: {', '.join(sorted(unknown))}.")
    statuses = sorted(set(raw.get("statuses") or DEFAULT_STATUSES))
    if not set(statuses) <= RELEASABLE_STATUSES:
        raise ServiceError(
            "bad_filter", "Only accepted and edited pairs can be released (statuses)."
        )
    modalities = sorted(set(raw.get("modalities") or []))
    allowed = set(Modality.values) - {Modality.MIXED}
    if not set(modalities) <= allowed:
        raise ServiceError("bad_filter", f"Modalities must be among {sorted(allowed)}.")
    try:
        books = sorted({int(b) for b in raw.get("books") or []})
        min_reviews = int(raw.get("min_reviews") or 0)
    except (TypeError, ValueError) as exc:
        raise ServiceError("bad_filter", "Books and min_reviews must be integers.") from exc
    if min_reviews < 0:
        raise ServiceError("bad_filter", "min_reviews cannot be negative.")
    if books and Textbook.objects.filter(pk__in=books).count() != len(books):
        raise ServiceError("bad_filter", "Some of the chosen books do not exist.")
    spec = {
        "statuses": statuses,
        "modalities": modalities,
        "books": books,
        "reviewed_from": None,
        "reviewed_to": None,
        "min_reviews": min_reviews,
    }
    for key in ("reviewed_from", "reviewed_to"):
        value = raw.get(key)
        if value:
            try:
                spec[key] = date.fromisoformat(str(value)).isoformat()
            except ValueError as exc:
                raise ServiceError("bad_filter", f"{key} must be a date (YYYY-MM-DD).") from exc
    if (
        spec["reviewed_from"]
        and spec["reviewed_to"]
        and spec["reviewed_from"] > spec["reviewed_to"]
    ):
        raise ServiceError("bad_filter", "The date range ends before it starts.")
    return spec


def normalize_split(raw: dict | None) -> dict:
    raw = dict(raw or {})
    try:
        config = pipeline.SplitConfig(
            rule=raw.get("rule", "figure"),
            seed=int(raw.get("seed", 0)),
            ratios=raw.get("ratios") or dict(pipeline.split.DEFAULT_RATIOS),
        )
    except (pipeline.SplitError, TypeError, ValueError) as exc:
        raise ServiceError("bad_split", str(exc)) from exc
    return config.as_dict()


def _check_name(name: str, version: str) -> None:
    if not NAME_RE.match(name or ""):
        raise ServiceError(
            "bad_name", "A release name is lower-case letters, digits, '-' and '_' (a slug)."
        )
    if not VERSION_RE.match(version or ""):
        raise ServiceError("bad_version", "A version is MAJOR.MINOR.PATCH, e.g. 1.0.0.")


def preview(raw_filter: dict | None) -> dict:
    return select.preview_counts(normalize_filter(raw_filter))


# -- writes --------------------------------------------------------------------------------
def create_release(
    *,
    name: str,
    version: str,
    user,
    filter: dict | None = None,
    split: dict | None = None,
    description: str = "",
    parent: Release | None = None,
) -> Release:
    """Validate, record the release and queue its build."""
    _check_name(name, version)
    limits.check_text("description", description, limits.RELEASE_DESCRIPTION, "release notes")
    spec = normalize_filter(filter)
    split_config = normalize_split(split)
    if not select.pairs_matching(spec).exists():
        raise ServiceError("empty", "No pairs match this filter: there is nothing to release.")
    token = uuid.uuid4().hex
    try:
        with transaction.atomic():
            if parent is not None:
                parent = Release.objects.select_for_update().get(pk=parent.pk)
                if parent.status != Release.Status.READY:
                    raise ReleaseNotReady("parent_not_ready", "The parent release is not built.")
            release = Release.objects.create(
                name=name,
                version=version,
                description=description,
                filter=spec,
                split=split_config,
                parent=parent,
                created_by=user if user is not None and user.is_authenticated else None,
                status=Release.Status.BUILDING,
                build_token=token,
                phase="queued",
            )
            record_event(
                user,
                release,
                EventAction.RELEASE_CREATED,
                after={
                    "name": name,
                    "version": version,
                    "filter": spec,
                    "split": split_config,
                    "parent": parent.pk if parent else None,
                },
            )
            dispatch.enqueue_release_build(release.pk, token)
    except IntegrityError as exc:
        raise Conflict("exists", f"Release {name} {version} already exists.") from exc
    return release


def next_version(name: str, version: str) -> str:
    major, minor, _ = (int(x) for x in version.split("."))
    taken = set(Release.objects.filter(name=name).values_list("version", flat=True))
    minor += 1
    while f"{major}.{minor}.0" in taken:
        minor += 1
    return f"{major}.{minor}.0"


def create_next_version(
    parent_id: int, user, *, version: str = "", description: str | None = None
) -> Release:
    """A new version cut with the parent's filter and split rule; inherited splits stay."""
    parent = Release.objects.get(pk=parent_id)
    if parent.status != Release.Status.READY:
        raise ReleaseNotReady("parent_not_ready", "Only a built release can have a next version.")
    return create_release(
        name=parent.name,
        version=version or next_version(parent.name, parent.version),
        user=user,
        filter=parent.filter,
        split=parent.split,
        description=parent.description if description is None else description,
        parent=parent,
    )


def rebuild_release(release_id: int, user) -> Release:
    """Start the build again (after a failure, or a build whose worker vanished)."""
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status == Release.Status.READY:
            raise Conflict("immutable", "A built release never changes; cut a new version.")
        before = {"status": release.status, "token": release.build_token}
        release.status = Release.Status.BUILDING
        release.build_token = uuid.uuid4().hex
        release.phase = "queued"
        release.progress = 0.0
        release.error = ""
        release.save()
        record_event(
            user, release, EventAction.RELEASE_REBUILD, before=before, after={"status": "building"}
        )
        dispatch.enqueue_release_build(release.pk, release.build_token)
    return release


# -- the build (runs on a ``release`` worker) ----------------------------------------------------
def releases_root() -> Path:
    """Local folder of the releases: ``releases/`` of the file storage, else under VAR_DIR."""
    try:
        return Path(default_storage.path("releases"))
    except NotImplementedError:
        return Path(settings.VAR_DIR) / "releases"


def _building_dir(release: Release, token: str) -> Path:
    return releases_root() / ".building" / f"{release.pk}-{token}"


def _final_dir(release: Release) -> Path:
    return releases_root() / release.name / release.version


def _clear_attempts(release_id: int) -> None:
    building = releases_root() / ".building"
    if building.is_dir():
        for entry in building.glob(f"{release_id}-*"):
            shutil.rmtree(entry, ignore_errors=True)


def _meta(release: Release) -> pipeline.ReleaseMeta:
    parent = None
    if release.parent_id:
        p = release.parent
        parent = {"name": p.name, "version": p.version, "manifest_sha256": p.manifest_sha256}
    return pipeline.ReleaseMeta(
        name=release.name,
        version=release.version,
        created_at=release.created_at.astimezone(UTC).isoformat(timespec="seconds"),
        created_by=release.created_by.get_username() if release.created_by else "",
        filter=release.filter,
        split=release.split,
        parent=parent,
        description=release.description,
    )


def _open_image(path: str):
    return default_storage.open(path, "rb")


def _local_image(path: str) -> str | None:
    """A crop's file on the local disk (hard-linked into the release), None on S3."""
    try:
        return default_storage.path(path)
    except NotImplementedError:
        return None


def run_build(release_id: int, token: str) -> bool:
    """Build one attempt. False when the attempt is stale or failed (the row says which)."""
    with transaction.atomic():
        release = (
            (Release.objects.select_for_update(of=("self",)).select_related("parent", "created_by"))
            .filter(pk=release_id)
            .first()
        )
        if (
            release is None
            or release.status != Release.Status.BUILDING
            or release.build_token != token
        ):
            return False
        release.phase = "selecting"
        release.progress = 0.0
        release.build_started_at = timezone.now()
        release.save(update_fields=["phase", "progress", "build_started_at"])

    workdir = _building_dir(release, token)
    try:
        # A killed attempt's leftovers, and this attempt's own. Inside the ``try``: a folder
        # that cannot be cleared fails the build for the curator to see, rather than leaving
        # it "building" with its message already acknowledged.
        _clear_attempts(release_id)
        workdir.mkdir(parents=True)
        result = _build_into(release, token, workdir)
        return _publish(release_id, token, workdir, result)
    except Exception as exc:
        log.exception("build of release %s failed", release_id)
        fail_build(release_id, token, _describe(exc))
        return False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _describe(exc: Exception) -> str:
    if isinstance(exc, pipeline.ReleaseBuildError | ServiceError):
        return str(exc)
    return f"The build crashed: {exc!r}"


def _leak_keys(infos: list[pipeline.GroupInfo], rule: str) -> dict[int, tuple[str, ...]]:
    """What the written release is checked against besides image sha256s (leaks.py)."""
    out = {}
    for info in infos:
        keys = (f"cluster:{info.cluster}",) if info.cluster else ()
        if rule == "book" and info.work_key:
            keys += (f"work:{info.work_key}",)
        if keys:
            out[info.pair_id] = keys
    return out


def _build_into(release: Release, token: str, workdir: Path) -> pipeline.BuildResult:
    spec = release.filter
    inherited = select.splits_of(release.parent)
    infos = list(select.group_infos(spec))  # small tuples: ids, keys and a modality
    merged: dict = {}
    splits = pipeline.assign_splits(
        infos,
        pipeline.SplitConfig(
            rule=release.split["rule"], seed=release.split["seed"], ratios=release.split["ratios"]
        ),
        inherited,
        stats=merged,
    )
    leak_keys = _leak_keys(infos, release.split["rule"])
    if not splits:
        raise ServiceError("empty", "No pairs match the release's filter any more.")
    last_report = [0.0]

    def progress(phase: str, fraction: float) -> None:
        now = time.monotonic()
        if now - last_report[0] < _PROGRESS_EVERY_S and fraction < 1.0:
            return
        last_report[0] = now
        Release.objects.filter(pk=release.pk, build_token=token).update(
            phase=phase, progress=round(fraction, 4)
        )

    items = open(workdir / ITEMS_FILE, "w", encoding="utf-8")  # noqa: SIM115

    def on_pair(pair: pipeline.PairRecord, split: str, fingerprint: str) -> None:
        items.write(f"{pair.id}\t{split}\t{fingerprint}\n")

    try:
        return pipeline.build(
            workdir,
            _meta(release),
            select.iter_pair_records(spec),
            splits,
            _open_image,
            local_image=_local_image,
            on_pair=on_pair,
            progress=progress,
            total=len(splits),
            leak_keys=leak_keys,
            merged=merged,
        )
    finally:
        items.close()


def _iter_items(path: Path, release_id: int):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            pair_id, split, fingerprint = line.rstrip("\n").split("\t")
            yield ReleaseItem(
                release_id=release_id, pair_id=int(pair_id), split=split, fingerprint=fingerprint
            )


def _publish(release_id: int, token: str, workdir: Path, result: pipeline.BuildResult) -> bool:
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status != Release.Status.BUILDING or release.build_token != token:
            return False  # a newer attempt took over while this one ran
        final = _final_dir(release)
        if final.exists():  # left by an attempt killed between rename and commit
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        ReleaseItem.objects.filter(release=release).delete()
        batch: list[ReleaseItem] = []
        for item in _iter_items(workdir / ITEMS_FILE, release.pk):
            batch.append(item)
            if len(batch) >= _ITEM_BATCH:
                ReleaseItem.objects.bulk_create(batch)
                batch = []
        if batch:
            ReleaseItem.objects.bulk_create(batch)
        release.counts = result.counts
        release.manifest_sha256 = result.manifest_sha256
        release.file_count = result.files
        release.archive_size = result.archive_size
        release.archive_sha256 = result.archive_sha256
        (workdir / ITEMS_FILE).unlink()
        os.replace(workdir, final)
        release.path = final.relative_to(releases_root().parent).as_posix()
        release.status = Release.Status.READY
        release.phase = "ready"
        release.progress = 1.0
        release.error = ""
        release.build_finished_at = timezone.now()
        release.save()
        record_event(
            None,
            release,
            EventAction.RELEASE_BUILT,
            after={
                "manifest_sha256": release.manifest_sha256,
                "archive_sha256": release.archive_sha256,
                "counts": {k: release.counts[k] for k in ("pairs", "vqa", "preferences")},
            },
        )
    return True


def fail_build(release_id: int, token: str, message: str) -> bool:
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id).first()
        if release is None or release.status != Release.Status.BUILDING:
            return False
        if release.build_token != token:
            return False
        release.status = Release.Status.FAILED
        release.phase = "failed"
        release.error = message[:2000]
        release.build_finished_at = timezone.now()
        release.save()
        record_event(None, release, EventAction.RELEASE_FAILED, after={"error": release.error})
    with contextlib.suppress(OSError):
        _clear_attempts(release_id)
    return True


# -- reading a ready release ----------------------------------------------------------------
def ready_root(release: Release) -> Path:
    """The folder of a ready release; 409 while it is being built or after it failed."""
    if release.status != Release.Status.READY or not release.path:
        raise ReleaseNotReady(
            "not_ready", f"Release {release} is {release.status}; only a ready release downloads."
        )
    return releases_root().parent / release.path


_BAD_PATH = re.compile(r"(^|/)\.\.?(/|$)|\\|\x00")


def release_file(release: Release, relpath: str) -> Path:
    """A file of a ready release. Refuses anything that could leave the release folder."""
    if not relpath or relpath.startswith("/") or _BAD_PATH.search(relpath) or ":" in relpath:
        raise ServiceError("bad_path", "File paths are relative and stay inside the release.")
    root = ready_root(release) / pipeline.RELEASE_DIR
    path = (root / relpath).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        raise ServiceError("not_found", f"{relpath} is not a file of this release.", status=404)
    return path


def archive_file(release: Release) -> Path:
    return ready_root(release) / pipeline.ARCHIVE
