"""Releases over the API: curators cut them; ML workers (read-only) list and download them.

Downloads (manifest, archive, single files) answer HTTP Range requests with 206 and
Content-Range, so an interrupted download resumes, and carry the file's sha256 as ETag and in
``X-Content-SHA256``. A release that is not ready answers 409.
"""

from __future__ import annotations

import json
import mimetypes
import re
from functools import lru_cache
from pathlib import Path

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from curation import limits
from curation import release as pipeline
from curation.api import serializers as s
from curation.api.base import MAX_SMALL, RoleScopedAPIView, RoleScopedViewSet, id_field
from curation.models import Release, TrainingRun
from curation.selectors import releases as select
from curation.services import releases as release_service
from curation.services import training as training_service
from skinplatform.accounts.roles import ADMIN, CURATOR, ML_WORKER, STAFF

TRAINING = frozenset({CURATOR, ADMIN, ML_WORKER})
DOWNLOAD_ACTIONS = {"manifest", "archive"}
_BLOCK = 256 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII)
_FAR = 10**18  # bytes: beyond any release file


# -- serializers -----------------------------------------------------------------------------
class ReleaseDetailSerializer(serializers.ModelSerializer):
    parent = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    downloadable = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id", "name", "version", "description", "status", "phase", "progress", "error",
            "filter", "split", "counts", "parent", "created_by", "created_at",
            "build_started_at", "build_finished_at", "manifest_sha256", "archive_sha256",
            "archive_size", "file_count", "downloadable",
        ]  # fmt: skip
        read_only_fields = fields

    def get_parent(self, release: Release) -> dict | None:
        if release.parent_id is None:
            return None
        return {"id": release.parent_id, "version": release.parent.version}

    def get_created_by(self, release: Release) -> str:
        return release.created_by.get_username() if release.created_by else ""

    def get_downloadable(self, release: Release) -> bool:
        return release.status == Release.Status.READY


class SplitSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=["figure", "book"], default="figure")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=MAX_SMALL)
    ratios = serializers.DictField(child=serializers.FloatField(min_value=0), required=False)


class FilterSerializer(serializers.Serializer):
    statuses = serializers.ListField(child=serializers.CharField(), required=False)
    modalities = serializers.ListField(child=serializers.CharField(), required=False)
    books = serializers.ListField(child=id_field(), required=False)
    reviewed_from = serializers.DateField(required=False, allow_null=True)
    reviewed_to = serializers.DateField(required=False, allow_null=True)
    min_reviews = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SMALL)


class ReleaseCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=30)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.RELEASE_DESCRIPTION
    )
    filter = FilterSerializer(required=False)
    split = SplitSerializer(required=False)


class NextVersionSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=limits.RELEASE_DESCRIPTION
    )


class PreviewSerializer(serializers.Serializer):
    pairs = serializers.IntegerField()
    by_modality = serializers.DictField(child=serializers.IntegerField())
    by_book = serializers.ListField(child=serializers.DictField())
    vqa = serializers.IntegerField()
    preference_candidates = serializers.IntegerField()


class DiffSerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    added = serializers.ListField(child=serializers.IntegerField())
    removed = serializers.ListField(child=serializers.IntegerField())
    changed = serializers.ListField(child=serializers.IntegerField())
    moved = serializers.ListField(child=serializers.DictField())
    unchanged = serializers.IntegerField()


def _filter_data(data: dict | None) -> dict:
    data = dict(data or {})
    for key in ("reviewed_from", "reviewed_to"):
        if data.get(key) is not None:
            data[key] = data[key].isoformat()
    return data


# -- ranged file responses ------------------------------------------------------------------
def _stream(path: Path, start: int, length: int):
    with open(path, "rb") as fh:
        fh.seek(start)
        while length > 0:
            block = fh.read(min(_BLOCK, length))
            if not block:
                return
            length -= len(block)
            yield block


def _position(digits: str) -> int | None:
    """A byte position from a Range header, without converting thousands of digits.

    Python refuses to parse integers of more than 4,300 digits (and converting is quadratic
    below that); any position past ``_FAR`` is past the end of every file, so it is
    ``_FAR``: a start there is unsatisfiable (416), an end there means "to the end".
    """
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < len(str(_FAR)) else _FAR


def ranged_file_response(request, path: Path, *, sha256: str, filename: str | None = None):
    """The file, or the byte range the request asks for (RFC 9110: one range, If-Range)."""
    size = path.stat().st_size
    etag = f'"{sha256}"'
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if_none_match = request.headers.get("If-None-Match", "")
    if if_none_match and (
        if_none_match.strip() == "*" or etag in [t.strip() for t in if_none_match.split(",")]
    ):
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
    start, end, code = 0, size - 1, 200
    wanted = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range")
    if wanted and (if_range is None or if_range.strip() == etag):
        match = _RANGE_RE.match(wanted.strip())
        if match and (match[1] or match[2]):
            first, last = _position(match[1]), _position(match[2])
            if first is not None:
                start = first
                end = min(last, size - 1) if last is not None else size - 1
            else:
                start, end = max(0, size - last), size - 1
                if last == 0:
                    start = size
            if start >= size or start > end:
                response = HttpResponse(status=416)
                response["Content-Range"] = f"bytes */{size}"
                response["ETag"] = etag
                return response
            code = 206
        # A malformed or multi-range header is ignored: the whole file is a valid answer.
    length = end - start + 1 if size else 0
    body = _stream(path, start, length) if request.method != "HEAD" else iter(())
    response = StreamingHttpResponse(body, status=code, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["X-Content-SHA256"] = sha256
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    if code == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@lru_cache(maxsize=4)
def _manifest_files(manifest_path: str, manifest_sha256: str) -> dict[str, dict]:
    return json.loads(Path(manifest_path).read_text("utf-8"))["files"]


def _download_responses(media_type: str, body=OpenApiTypes.BINARY) -> dict:
    return {
        (200, media_type): body,
        (206, media_type): body,
        304: OpenApiResponse(description="Not modified (If-None-Match matched the ETag)"),
        409: OpenApiResponse(description="The release is not ready (building or failed)"),
        416: OpenApiResponse(description="The requested range is outside the file"),
    }


_RANGE_PARAMS = [
    OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                     description="bytes=START-[END] to resume a download"),
    OpenApiParameter("If-Range", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
    OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False),
]  # fmt: skip


# -- viewsets ----------------------------------------------------------------------------------
class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RoleScopedViewSet):
    serializer_class = ReleaseDetailSerializer
    filterset_fields = ["name", "version", "status"]
    action_roles = {
        "list": TRAINING,
        "retrieve": TRAINING,
        "manifest": TRAINING,
        "archive": TRAINING,
        "diff": TRAINING,
        "create": STAFF,
        "preview": STAFF,
        "next_version": STAFF,
        "rebuild": STAFF,
    }

    def get_queryset(self):
        return select.releases()

    def perform_content_negotiation(self, request, force=False):
        # A downloader's Accept header (application/octet-stream, */*) must not be refused.
        return super().perform_content_negotiation(
            request, force=force or self.action in DOWNLOAD_ACTIONS
        )

    @extend_schema(request=ReleaseCreateSerializer, responses={202: ReleaseDetailSerializer})
    def create(self, request):
        """Cut a release from a filter; it is built in the background (poll its status)."""
        form = ReleaseCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        release = release_service.create_release(
            name=data["name"],
            version=data["version"],
            description=data.get("description", ""),
            filter=_filter_data(data.get("filter")),
            split=data.get("split"),
            user=request.user,
        )
        return Response(ReleaseDetailSerializer(release).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=FilterSerializer, responses=PreviewSerializer)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """Counts a release cut with this filter would hold, without building anything."""
        form = FilterSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(release_service.preview(_filter_data(form.validated_data)))

    @extend_schema(request=NextVersionSerializer, responses={202: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"], url_path="next-version")
    def next_version(self, request, pk=None):
        """A new version with this release's filter; it becomes the parent."""
        self.get_object()
        form = NextVersionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        release = release_service.create_next_version(
            int(pk),
            request.user,
            version=form.validated_data.get("version", ""),
            description=form.validated_data.get("description"),
        )
        return Response(ReleaseDetailSerializer(release).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def rebuild(self, request, pk=None):
        """Build a failed (or stuck) release again; a ready release never changes (409)."""
        self.get_object()
        release = release_service.rebuild_release(int(pk), request.user)
        return Response(ReleaseDetailSerializer(release).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against",
                OpenApiTypes.INT,
                required=False,
                description="the older release (default: the parent)",
            )
        ],
        responses={
            200: DiffSerializer,
            409: OpenApiResponse(description="One of the two releases is not ready"),
        },
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        """Pairs added, removed and changed since another version (by default the parent)."""
        new = self.get_object()
        against = request.query_params.get("against") or new.parent_id
        if not against:
            raise release_service.ServiceError("no_parent", "Name a release to compare against.")
        try:
            old = get_object_or_404(Release, pk=int(against))
        except ValueError as exc:
            raise release_service.ServiceError("bad_against", "against is a release id.") from exc
        for release in (old, new):
            release_service.ready_root(release)
        result = select.diff(old, new)
        return Response({"old": old.pk, "new": new.pk, **result.as_dict()})

    @extend_schema(
        parameters=_RANGE_PARAMS,
        responses=_download_responses("application/json", OpenApiTypes.OBJECT),
    )
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        """manifest.json: metadata and the sha256 and size of every file of the release."""
        release = self.get_object()
        root = release_service.ready_root(release) / pipeline.RELEASE_DIR
        return ranged_file_response(request, root / "manifest.json", sha256=release.manifest_sha256)

    @extend_schema(parameters=_RANGE_PARAMS, responses=_download_responses("application/x-tar"))
    @action(detail=True, methods=["get"])
    def archive(self, request, pk=None):
        """The whole release as one deterministic tar; resumable with Range."""
        release = self.get_object()
        path = release_service.archive_file(release)
        return ranged_file_response(
            request,
            path,
            sha256=release.archive_sha256,
            filename=f"{release.name}-{release.version}.tar",
        )


class ReleaseFileView(RoleScopedAPIView):
    """One file of a ready release, by its path in the manifest."""

    action_roles = {"get": TRAINING}

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "path",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="a path listed in manifest.json, e.g. pairs.jsonl",
            ),
            *_RANGE_PARAMS,
        ],
        # the type of the file itself (JSON, JSON Lines, PNG, CSV, Markdown, Parquet...)
        responses={
            **_download_responses("*/*", OpenApiTypes.ANY),
            400: OpenApiResponse(description="bad path"),
        },
    )
    def get(self, request, pk: int, path: str):
        release = get_object_or_404(Release, pk=pk)
        target = release_service.release_file(release, path)
        if path == "manifest.json":
            sha = release.manifest_sha256
        else:
            manifest = release_service.ready_root(release) / pipeline.RELEASE_DIR / "manifest.json"
            files = _manifest_files(str(manifest), release.manifest_sha256)
            if path not in files:
                raise release_service.ServiceError(
                    "not_found", f"{path} is not a file of this release.", status=404
                )
            sha = files[path]["sha256"]
        return ranged_file_response(request, target, sha256=sha, filename=target.name)


class WorkerPollSerializer(s.TrainingRunClaimSerializer):
    """What a worker says about itself when it asks for work (all but `worker` optional)."""

    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True)
    # Free text, not the platform's stage choices: a newer worker must still be able to claim.
    stages = serializers.ListField(
        child=serializers.CharField(max_length=20), max_length=20, required=False
    )
    poll_s = serializers.FloatField(min_value=0, max_value=86400, required=False)


class WorkerSeenSerializer(serializers.Serializer):
    worker = serializers.CharField()
    last_seen = serializers.DateTimeField()


def _record_poll(request, data: dict):
    return training_service.record_worker_poll(
        request.user,
        data["worker"],
        hostname=data.get("hostname", ""),
        stages=data.get("stages"),
        poll_s=data.get("poll_s"),
    )


class TrainingRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, RoleScopedViewSet
):
    """Training runs. Create validates the config with `training_service.check_run_config`,
    the same rules as the release page's form (400 with the offending keys)."""

    serializer_class = s.TrainingRunSerializer
    filterset_fields = ["release", "stage", "status"]
    action_roles = {"*": TRAINING, "cancel": STAFF}

    def get_queryset(self):
        return TrainingRun.objects.select_related("release", "claimed_by")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = training_service.create_training_run(
            data["release"], data["stage"], data.get("config", {}), self.request.user
        )

    @extend_schema(request=s.TrainingRunUpdateSerializer, responses=s.TrainingRunSerializer)
    def partial_update(self, request, pk=None):
        """A worker's progress report: status, progress, metrics (merged), artefacts.

        Only the account that claimed the run (or a curator or admin) may report into it;
        another worker, or any worker on a run not claimed yet, gets 403.
        """
        self.get_object()
        form = s.TrainingRunUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run = training_service.report_training_run(int(pk), request.user, form.validated_data)
        return Response(s.TrainingRunSerializer(run).data)

    @extend_schema(request=s.TrainingRunClaimSerializer, responses=s.TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        """Take a queued run for one worker; 409 when another worker already took it."""
        self.get_object()
        form = WorkerPollSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        _record_poll(request, form.validated_data)
        run = training_service.claim_training_run(
            int(pk), request.user, form.validated_data["worker"]
        )
        return Response(s.TrainingRunSerializer(run).data)

    @extend_schema(request=WorkerPollSerializer, responses=WorkerSeenSerializer)
    @action(detail=False, methods=["post"])
    def heartbeat(self, request):
        """An idle worker's poll: the release page lists workers by their last one."""
        form = WorkerPollSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        beat = _record_poll(request, form.validated_data)
        return Response(WorkerSeenSerializer(beat).data)

    @extend_schema(request=None, responses=s.TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running run (409 once it ended); its worker stops at its next
        progress report, which is answered 409 with code `cancelled`."""
        self.get_object()
        run = training_service.cancel_training_run(int(pk), request.user)
        return Response(s.TrainingRunSerializer(run).data)
