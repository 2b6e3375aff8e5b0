"""A database, broker or cache outage answers 503 people and programs can read, not a 500."""

from unittest import mock

import pytest
from django.db import OperationalError, connection
from kombu.exceptions import OperationalError as BrokerError

from tests.factories import make_book, make_pairs

# What psycopg says when Postgres is gone; nothing of it may reach the client.
REFUSED = 'connection failed: connection to server at "10.9.8.7", port 5432 failed: refused'


def database_down():
    """Every new cursor fails as it does with the server unreachable."""
    return mock.patch.object(connection, "ensure_connection", side_effect=OperationalError(REFUSED))


def test_api_call_with_the_database_down_is_a_json_503(api_client_for):
    client = api_client_for("expert")
    with database_down():
        response = client.get("/api/textbooks/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert "database cannot be reached" in body["detail"]
    assert "10.9.8.7" not in response.content.decode()
    assert response["Retry-After"] == "30"


def test_page_with_the_database_down_is_a_short_html_503(client, make_user):
    client.force_login(make_user("erin", "expert"))
    with database_down():
        response = client.get("/books/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "database cannot be reached" in page
    assert 'class="brand"' in page  # the site's layout (base.html)
    assert "10.9.8.7" not in page


def test_api_write_with_the_broker_down_is_a_json_503(api_client_for, monkeypatch):
    curator = api_client_for("curator")
    (pair,) = make_pairs(make_book(pages=1), 1)
    pair.status = "accepted"
    pair.save()

    def broker_refuses(pair_id):
        raise BrokerError("Error 111 connecting to 10.9.8.7:6379. Connection refused.")

    monkeypatch.setattr("curation.services.dispatch.enqueue_drafting", broker_refuses)
    response = curator.post("/api/pairs/draft/", {"pairs": [pair.pk]}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert "10.9.8.7" not in response.content.decode()


def test_api_call_with_the_cache_down_is_a_json_503(api_client_for, settings):
    """The throttles count in the cache; with Redis gone that is an outage, not a bug."""
    client = api_client_for("expert")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    response = client.get("/api/textbooks/")
    assert response.status_code == 503
    assert response.json()["code"] == "cache_unavailable"


def test_other_errors_still_propagate(api_client_for, monkeypatch):
    """Only outages become 503: a bug stays a bug (500, logged with its traceback)."""
    client = api_client_for("curator")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("curation.services.drafting.request_drafting", broken)
    with pytest.raises(ZeroDivisionError):
        client.post("/api/pairs/draft/", {"pairs": [1]}, format="json")
