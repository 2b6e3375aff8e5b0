"""Headers every response carries, and the TLS redirect that spares the health probe."""

import pytest

CLOSED = ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()")


@pytest.mark.parametrize("path", ["/healthz", "/accounts/login/", "/api/textbooks/", "/nowhere/"])
def test_every_response_carries_a_permissions_policy(client, db, path):
    response = client.get(path)
    policy = response["Permissions-Policy"]
    for directive in CLOSED:
        assert directive in policy, (path, policy)


def test_behind_tls_http_is_redirected_and_hsts_sent_but_healthz_stays_plain(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/"
    assert client.get("/healthz").status_code == 200  # load balancers probe over HTTP
    secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
