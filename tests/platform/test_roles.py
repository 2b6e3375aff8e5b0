"""Roles x endpoints. A new endpoint without an entry in MATRIX fails ``test_every_route_...``."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from curation.api.base import RoleScopedMixin
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import ALL_ROLES

READERS = {"curator", "expert", "admin"}
STAFF = {"curator", "admin"}
TRAINING = {"curator", "admin", "ml_worker"}

# (method, path) -> roles that get through (anything else: 403; anonymous: 401/302)
MATRIX = {
    ("get", "/api/textbooks/"): READERS,
    ("post", "/api/textbooks/"): STAFF,
    ("get", "/api/textbooks/{book}/"): READERS,
    ("post", "/api/textbooks/{book}/reingest/"): STAFF,
    ("get", "/api/figures/"): READERS,
    ("get", "/api/figures/{figure}/"): READERS,
    ("get", "/api/figures/{figure}/panels/"): READERS,
    ("post", "/api/figures/{figure}/panels/adjust/"): READERS,
    ("post", "/api/figures/{figure}/panels/split/"): READERS,
    ("post", "/api/figures/{figure}/panels/merge/"): READERS,
    ("post", "/api/figures/{figure}/panels/subcaptions/"): READERS,
    ("get", "/api/pairs/"): READERS,
    ("get", "/api/pairs/{pair}/"): READERS,
    ("post", "/api/pairs/claim-next/"): READERS,
    ("post", "/api/pairs/draft/"): STAFF,
    ("post", "/api/pairs/{pair}/review/"): READERS,
    ("post", "/api/pairs/{pair}/skip/"): READERS,
    ("post", "/api/pairs/{pair}/renew/"): READERS,
    ("get", "/api/pairs/{pair}/history/"): READERS,
    ("post", "/api/pairs/{pair}/revert/"): STAFF,
    ("get", "/api/dashboard/"): STAFF,
    ("get", "/api/review-settings/"): READERS,
    ("put", "/api/review-settings/"): STAFF,
    ("get", "/dashboard/"): STAFF,
    ("post", "/review/settings/"): STAFF,
    ("post", "/dashboard/modality/retrain/"): STAFF,
    ("get", "/review/guidelines/"): READERS,
    ("post", "/review/guidelines/"): STAFF,
    ("post", "/releases/{release}/train/"): STAFF,
    ("get", "/review/next/"): READERS,
    ("get", "/api/vqa-items/"): READERS,
    ("post", "/api/vqa-items/"): READERS,
    ("get", "/api/vqa-items/{vqa}/"): READERS,
    ("post", "/api/vqa-items/claim-next/"): READERS,
    ("post", "/api/vqa-items/{vqa}/review/"): READERS,
    ("get", "/api/vqa-items/{vqa}/history/"): READERS,
    ("get", "/review/vqa/next/"): READERS,
    ("get", "/review/vqa/pairs/{pair}/"): READERS,
    ("post", "/review/vqa/pairs/{pair}/add/"): READERS,
    ("post", "/review/vqa/items/{vqa}/"): READERS,
    ("get", "/review/pairs/{pair}/"): READERS,
    ("post", "/review/pairs/{pair}/"): READERS,
    ("post", "/review/pairs/{pair}/renew/"): READERS,
    ("post", "/review/pairs/{pair}/revert/"): STAFF,
    ("post", "/review/pairs/{pair}/undo/"): READERS,
    ("get", "/review/figures/{figure}/panels/"): READERS,
    ("post", "/review/figures/{figure}/panels/"): READERS,
    ("get", "/review/figures/{figure}/panels/status/"): READERS,
    ("get", "/review/figures/{figure}/panels/gutter/"): READERS,
    ("get", "/api/releases/"): TRAINING,
    ("get", "/api/releases/{release}/"): TRAINING,
    ("post", "/api/releases/"): STAFF,
    ("post", "/api/releases/preview/"): STAFF,
    ("post", "/api/releases/{release}/next-version/"): STAFF,
    ("post", "/api/releases/{release}/rebuild/"): STAFF,
    ("get", "/api/releases/{release}/diff/"): TRAINING,
    ("get", "/api/releases/{release}/manifest/"): TRAINING,
    ("get", "/api/releases/{release}/archive/"): TRAINING,
    ("get", "/api/releases/{release}/files/{file}"): TRAINING,
    ("get", "/releases/"): STAFF,
    ("post", "/releases/"): STAFF,
    ("get", "/releases/new/"): STAFF,
    ("get", "/releases/preview/"): STAFF,
    ("get", "/releases/{release}/"): STAFF,
    ("get", "/releases/{release}/progress/"): STAFF,
    ("post", "/releases/{release}/next-version/"): STAFF,
    ("post", "/releases/{release}/rebuild/"): STAFF,
    ("get", "/releases/{release}/diff/"): STAFF,
    ("get", "/api/training-runs/"): TRAINING,
    ("post", "/api/training-runs/"): TRAINING,
    ("get", "/api/training-runs/{run}/"): TRAINING,
    ("patch", "/api/training-runs/{run}/"): TRAINING,
    ("post", "/api/training-runs/{run}/claim/"): TRAINING,
    ("post", "/api/training-runs/{run}/cancel/"): STAFF,
    ("post", "/api/training-runs/heartbeat/"): TRAINING,
    ("post", "/releases/{release}/runs/{run}/cancel/"): STAFF,
    ("get", "/releases/{release}/runs/{run}/"): STAFF,
    ("get", "/runs/compare/"): STAFF,
    ("get", "/"): set(ALL_ROLES),
    ("get", "/books/"): READERS,
    ("get", "/books/{book}/"): READERS,
    ("get", "/books/{book}/progress/"): READERS,
    ("post", "/books/{book}/reingest/"): STAFF,
    ("post", "/books/{book}/work/"): STAFF,
    ("post", "/review/pairs/{pair}/duplicates/"): READERS,
    ("get", "/files/{file}"): READERS,
}

PUBLIC_PREFIXES = ("/healthz", "/accounts/", "/admin/", "/api/schema/", "/api/docs/")


def _walk(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + str(entry.pattern), entry.callback


def _view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def test_every_route_is_role_scoped_or_says_it_is_public():
    for route, callback in _walk(get_resolver()):
        cls = _view_class(callback)
        name = (cls or callback).__name__
        module = (cls or callback).__module__
        if route.startswith("/admin/") or module.startswith("django.contrib.auth"):
            continue  # Django's admin and login views carry their own staff/login checks
        if name.lower().startswith("public"):
            continue
        assert cls is not None and issubclass(cls, RoleScopedMixin | RoleRequiredView), (
            f"{route} ({name}) neither inherits a role-scoped base nor is named Public*"
        )


def _shape(route: str) -> str:
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"\(\?P<[a-z_]+>[^)]*\)", "{x}", route)
    route = re.sub(r"<[a-z]+:[a-z_]+>", "{x}", route)
    return re.sub(r"\{[a-z_]+\}", "{x}", route)


def test_every_route_is_in_the_matrix():
    known = {_shape(path) for _, path in MATRIX}
    for route, _ in _walk(get_resolver()):
        if route.startswith(PUBLIC_PREFIXES) or "format" in route:
            continue
        assert _shape(route) in known, f"{route} has no entry in MATRIX"


@pytest.fixture
def objects(db):
    from curation.models import (
        Figure,
        Page,
        Pair,
        Panel,
        Release,
        Textbook,
        TrainingRun,
        VQAItem,
    )

    book = Textbook.objects.create(
        title="B", sha256="a" * 64, file="books/x.pdf", size_bytes=1, page_count=1,
        status="done",
    )  # fmt: skip
    page = Page.objects.create(textbook=book, number=1, width=100, height=100)
    figure = Figure.objects.create(
        textbook=book, page=page, label="1.1", bbox=[0, 0, 1, 1], image="crops/x.png"
    )
    panel = Panel.objects.create(figure=figure, index=0, bbox=[0, 0, 1, 1], image="crops/x.png")
    pair = Pair.objects.create(panel=panel, textbook=book)
    release = Release.objects.create(name="r", version="1.0.0", status="ready")
    run = TrainingRun.objects.create(release=release, stage="sft")
    vqa = VQAItem.objects.create(pair=pair, question_type="diagnosis", question="Q?", answer="A")
    return {
        "book": book.pk, "figure": figure.pk, "pair": pair.pk, "release": release.pk,
        "run": run.pk, "vqa": vqa.pk, "file": "crops/x.png",
    }  # fmt: skip


def _call(client, method, path, release_id):
    if path == "/api/training-runs/" and method == "post":
        return client.post(path, {"release": release_id, "stage": "sft"}, format="json")
    if method == "put":
        return client.put(path, {"reviews_per_item": 1}, format="json")
    if method == "patch":
        # Only the claimer reports into a run (tests/platform/test_run_ownership.py): claim
        # first, so that a 403 here can only be the role check.
        client.post(f"{path}claim/", {"worker": "matrix"}, format="json")
        return client.patch(path, {"progress": 0.5}, format="json")
    if path.endswith("reingest/"):
        return client.post(path, {"force": True}, format="json")
    if path == "/api/textbooks/" and method == "post":
        return client.post(path, {}, format="multipart")
    return getattr(client, method)(path)


@pytest.mark.parametrize("role", [*ALL_ROLES, None])
def test_matrix(role, objects, api_client_for, eager_celery, monkeypatch):
    from rest_framework.test import APIClient

    monkeypatch.setattr("curation.services.dispatch.enqueue_ingest", lambda *a: None)
    if role is None:
        client = APIClient()
    else:
        client = api_client_for(role)
        client.force_login(client.user)  # HTML views use the session
    for (method, template), allowed in MATRIX.items():
        path = template.format(**objects)
        response = _call(client, method, path, objects["release"])
        if role is None:
            assert response.status_code in (401, 403, 302), (method, path, response.status_code)
            continue
        if role in allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.content)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)


def _blind_call(client, method, path, objects):
    """``_call``, except that decisions go in with a stale version, to get the conflict payload."""
    if method == "post" and path == f"/api/pairs/{objects['pair']}/review/":
        return client.post(path, {"version": 1, "action": "accept"}, format="json")
    if method == "post" and path == f"/review/pairs/{objects['pair']}/":
        return client.post(path, {"action": "accept", "version": "1", "text": "mine"})
    return _call(client, method, path, objects["release"])


def test_an_expert_awaiting_a_blind_review_sees_no_other_decision_anywhere(
    objects, api_client_for, make_user, eager_celery, monkeypatch
):
    """Two reviews per item, one given: the other expert walks every endpoint and learns nothing."""
    from curation.models import Pair
    from curation.services import review as review_service

    monkeypatch.setattr("curation.services.dispatch.enqueue_ingest", lambda *a: None)
    review_service.set_reviews_per_item(make_user("blind_curator", "curator"), 2)
    secret = "first-reviewer-secret-caption"
    review_service.review_pair(objects["pair"], make_user("first_reviewer", "expert"), version=1,
                               action="accept", changes={"text": secret})  # fmt: skip
    client = api_client_for("expert", username="second_reviewer")
    client.force_login(client.user)
    seen = set()
    for method, template in MATRIX:
        path = template.format(**objects)
        response = _blind_call(client, method, path, objects)
        body = response.content.decode(errors="replace")
        assert secret not in body and "first_reviewer" not in body, (method, path)
        seen.add((method, template, response.status_code))
    # The walk reached the surfaces that would show the first review, not only refusals.
    assert ("get", "/api/pairs/{pair}/history/", 200) in seen
    assert ("get", "/review/pairs/{pair}/", 200) in seen
    assert ("post", "/api/pairs/{pair}/review/", 409) in seen
    assert ("post", "/review/pairs/{pair}/", 409) in seen
    assert ("get", "/api/dashboard/", 403) in seen and ("get", "/dashboard/", 403) in seen
    assert Pair.objects.get(pk=objects["pair"]).status == Pair.Status.PROPOSED  # still blind
    # Nor does filtering the pair list by status tell the first decision.
    listed = {
        status: [p["id"] for p in client.get(f"/api/pairs/?status={status}").json()["results"]]
        for status in Pair.Status.values
    }
    assert listed.pop(Pair.Status.PROPOSED) == [objects["pair"]] and not any(listed.values())
