"""Sign-in lockout (django-axes) and API throttles: brute force gets 429, then a cool-off."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from rest_framework.test import APIClient

LOGIN = "/accounts/login/"
RIGHT = "the-right-password"


@pytest.fixture
def lockout(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=10)
    return settings


def _sign_in(client, username, password, ip="127.0.0.1", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def _age_attempts(by: dt.timedelta) -> None:
    """Move the recorded failures into the past: the clock, not the test, runs the cool-off."""
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= by
        attempt.save(update_fields=["attempt_time"])


def test_wrong_passwords_lock_the_account_then_the_cool_off_lets_it_in(client, make_user, lockout):
    user = make_user("alice", "expert", password=RIGHT)
    for _ in range(2):
        again = _sign_in(client, "alice", "wrong")
        assert again.status_code == 200 and "didn't match" in again.content.decode()
    assert _sign_in(client, "alice", "wrong").status_code == 429

    locked = _sign_in(client, "alice", RIGHT)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    page = locked.content.decode()
    assert 'class="brand"' in page  # the site's own page (base.html), not a bare text
    assert "Too many attempts" in page and "after 3 failed attempts" in page
    assert "Try again after" in page and "in about 10 minutes" in page
    assert locked["Retry-After"] == "600"

    _age_attempts(dt.timedelta(minutes=9))
    assert _sign_in(client, "alice", RIGHT).status_code == 429  # not yet: and the wait restarts
    _age_attempts(dt.timedelta(minutes=10, seconds=1))
    welcome = _sign_in(client, "alice", RIGHT)
    assert welcome.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_one_address_trying_many_usernames_is_locked_out(client, make_user, lockout):
    make_user("bob", "expert", password=RIGHT)
    for name in ("carol", "dave", "erin"):
        _sign_in(client, name, "guess", ip="10.0.0.1")
    assert _sign_in(client, "bob", RIGHT, ip="10.0.0.1").status_code == 429
    assert _sign_in(client, "bob", RIGHT, ip="10.0.0.2").status_code == 302


def test_one_username_tried_from_many_addresses_is_locked_out(client, make_user, lockout):
    make_user("frank", "expert", password=RIGHT)
    for n in range(3):
        _sign_in(client, "frank", "guess", ip=f"10.0.1.{n}")
    assert _sign_in(client, "frank", RIGHT, ip="10.0.1.99").status_code == 429


def test_a_forged_forwarded_for_header_does_not_escape_the_address_lock(client, make_user, lockout):
    """Without a trusted proxy in front, X-Forwarded-For is the client's to choose: ignored."""
    make_user("grace", "expert", password=RIGHT)
    for n in range(3):
        _sign_in(client, f"user{n}", "guess", ip="10.0.2.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    forged = _sign_in(client, "grace", RIGHT, ip="10.0.2.1", HTTP_X_FORWARDED_FOR="192.0.2.77")
    assert forged.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(client, make_user, lockout):
    lockout.REST_FRAMEWORK = {**lockout.REST_FRAMEWORK, "NUM_PROXIES": 1}
    make_user("heidi", "expert", password=RIGHT)
    proxy = "10.0.3.1"  # every request arrives from the proxy
    for n in range(3):
        _sign_in(client, f"user{n}", "guess", ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert (
        _sign_in(client, "heidi", RIGHT, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code
        == 429
    )
    other_client = _sign_in(client, "heidi", RIGHT, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other_client.status_code == 302


def test_a_forwarded_value_that_is_no_address_falls_back_to_the_peer(client, make_user, lockout):
    lockout.REST_FRAMEWORK = {**lockout.REST_FRAMEWORK, "NUM_PROXIES": 2}  # one too many
    make_user("judy", "expert", password=RIGHT)
    for n in range(3):
        refused = _sign_in(client, "judy", "guess", ip="10.0.5.1", HTTP_X_FORWARDED_FOR=f"x{n}, y")
        assert refused.status_code in (200, 429)
    assert AccessAttempt.objects.get().ip_address == "10.0.5.1"


def test_the_admin_sign_in_is_locked_out_too(client, make_user, lockout):
    make_user("ivan", "admin", password=RIGHT)
    for _ in range(3):
        client.post("/admin/login/", {"username": "ivan", "password": "guess"})
    assert client.post("/admin/login/", {"username": "ivan", "password": RIGHT}).status_code == 429


# --- API ----------------------------------------------------------------------------------


def _rates(settings, **rates):
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**current, **rates},
    }


def test_invalid_tokens_from_one_address_are_throttled(settings, api_client_for):
    _rates(settings, bad_token="3/minute")
    guesser = APIClient()
    for n in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {n:040d}")
        refused = guesser.get("/api/textbooks/")
        # 403, not 401: the first authenticator (session) sends no WWW-Authenticate challenge
        assert refused.status_code == 403
        assert refused.json()["detail"] == "Invalid token."
    throttled = guesser.get("/api/textbooks/")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert "throttled" in throttled.json()["detail"].lower()

    # a right guess from that address waits too, or the guessing would still pay off
    valid = api_client_for("expert")
    assert valid.get("/api/textbooks/").status_code == 429
    assert valid.get("/api/textbooks/", REMOTE_ADDR="10.0.4.2").status_code == 200


def test_valid_tokens_are_not_counted_as_failures(settings, api_client_for):
    _rates(settings, bad_token="3/minute")
    client = api_client_for("expert")
    for _ in range(5):
        assert client.get("/api/textbooks/").status_code == 200


def test_authenticated_api_use_has_a_per_user_rate(settings, api_client_for):
    _rates(settings, user="4/minute")
    alice = api_client_for("expert", username="alice")
    bob = api_client_for("expert", username="bob")
    for _ in range(4):
        assert alice.get("/api/textbooks/").status_code == 200
    assert alice.get("/api/textbooks/").status_code == 429
    assert bob.get("/api/textbooks/").status_code == 200


def test_the_default_rates_leave_room_for_a_busy_client():
    """The shipped per-user rate must not slow a release pull or the review benchmark."""
    from rest_framework.throttling import SimpleRateThrottle

    from skinplatform import settings as shipped

    per_second = SimpleRateThrottle.parse_rate(
        None, shipped.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"]
    )
    assert per_second[0] / per_second[1] >= 100
