"""Curator pages: list, new-release form with live counts, detail with progress, diff."""

from __future__ import annotations

import pytest
from django.test import Client

from curation.models import Release
from curation.services import releases as release_service


@pytest.fixture
def browser(world):
    client = Client()
    client.force_login(world.curator)
    return client


def test_new_release_form_previews_counts_and_creates(world, browser):
    page = browser.get("/releases/new/")
    assert page.status_code == 200
    assert b'id="preview-pairs"' in page.content and b"csrfmiddlewaretoken" in page.content
    fragment = browser.get(
        "/releases/preview/?statuses=accepted&modalities=clinical", HTTP_HX_REQUEST="true"
    )
    expected = release_service.preview({"modalities": ["clinical"], "statuses": ["accepted"]})
    assert f'<span id="preview-pairs">{expected["pairs"]}</span>'.encode() in fragment.content
    bad = browser.get("/releases/preview/?modalities=xray")
    assert b'data-code="bad_filter"' in bad.content

    response = browser.post(
        "/releases/",
        {"name": "mmskin", "version": "1.0.0", "statuses": ["accepted", "edited"],
         "split_rule": "figure", "seed": "4"},
    )  # fmt: skip
    release = Release.objects.get(name="mmskin")
    assert response.status_code == 302 and response["Location"] == f"/releases/{release.pk}/"
    assert release.split["seed"] == 4 and release.status == "building"
    detail = browser.get(f"/releases/{release.pk}/")
    assert b'data-status="building"' in detail.content and b"hx-get" in detail.content

    release_service.run_build(release.pk, release.build_token)
    progress = browser.get(f"/releases/{release.pk}/progress/", HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true"
    detail = browser.get(f"/releases/{release.pk}/")
    assert b'id="download-archive"' in detail.content
    assert b"mmskin 1.0.0" in browser.get("/releases/").content


def test_form_errors_are_shown(world, browser):
    response = browser.post("/releases/", {"name": "Bad Name", "version": "1.0.0"})
    assert response.status_code == 400 and b'data-code="bad_name"' in response.content


def test_forms_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.curator)
    assert client.post("/releases/", {"name": "x", "version": "1.0.0"}).status_code == 403


def test_next_version_and_diff_pages(world, browser, cut):
    v1 = cut()
    pair = world.pairs[2]
    pair.text = "A better caption"
    pair.save()
    response = browser.post(f"/releases/{v1.pk}/next-version/", {"version": ""})
    v2 = Release.objects.get(version="1.1.0")
    assert response["Location"] == f"/releases/{v2.pk}/"
    release_service.run_build(v2.pk, v2.build_token)
    page = browser.get(f"/releases/{v2.pk}/diff/")
    assert page.status_code == 200
    assert b'<span id="diff-changed">1</span>' in page.content
    assert b"A better caption" in page.content
    again = browser.post(f"/releases/{v1.pk}/rebuild/", follow=True)
    assert b"never changes" in again.content


def test_nav_links_to_releases_for_curators(world, browser):
    assert b'href="/releases/"' in browser.get("/releases/").content
