"""403 and 404 are pages of the site: its navigation, a heading, and the reason in words."""

import pytest

from curation.views.base import roles_only
from skinplatform.accounts.roles import ADMIN, CURATOR, EXPERT, ML_WORKER


def test_roles_are_named_the_way_a_person_says_them():
    assert roles_only(frozenset({CURATOR, ADMIN})) == "curators only"
    assert roles_only(frozenset({EXPERT, CURATOR, ADMIN})) == "curators and experts only"
    assert roles_only(frozenset({EXPERT, CURATOR, ML_WORKER})) == (
        "curators, experts and ML workers only"
    )
    assert roles_only(frozenset({ADMIN})) == "admins only"


@pytest.mark.django_db
def test_an_expert_on_a_curator_page_gets_a_styled_403_with_the_reason(client, make_user):
    eve = make_user("eve", EXPERT)
    client.force_login(eve)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Not allowed</h1>" in html
    assert "This page is for curators only" in html
    assert 'id="nav-review"' in html  # the site's navigation, so the expert can go on
    assert "Signed in as eve (expert)" in html


@pytest.mark.django_db
def test_a_missing_pair_gets_a_styled_404_that_names_the_path(client, make_user):
    cat = make_user("cat", CURATOR)
    client.force_login(cat)
    response = client.get("/review/pairs/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html
    assert "<code>/review/pairs/999999/</code>" in html
    assert 'id="nav-review"' in html


@pytest.mark.django_db
def test_an_unknown_url_gets_the_404_page_without_resolver_noise(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html
    assert "Resolver404" not in html and "tried" not in html
