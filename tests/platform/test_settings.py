import os
import secrets
import subprocess
import sys

import pytest

from skinplatform.env import (
    ConfigError,
    cache_config,
    check_secret_key,
    env_bool,
    env_int,
    env_rate,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRONG_KEY = secrets.token_urlsafe(50)
PRINT_DEBUG_AND_ENGINE = (
    "import skinplatform.settings as s; print(s.DEBUG, s.DATABASES['default']['ENGINE'])"
)


def _run(tmp_path, args, **env):
    dropped = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}
    dropped |= {"BEHIND_TLS_PROXY", "SECURE_COOKIES", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}
    # set for the whole session by tests/e2e/conftest.py (Playwright); check --deploy flags it
    dropped |= {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update(VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def _load_settings(tmp_path, code=PRINT_DEBUG_AND_ENGINE, **env):
    return _run(tmp_path, ["-c", code], **env)


def test_refuses_to_start_without_secret_key_when_debug_is_off(tmp_path):
    result = _load_settings(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_is_off_by_default_and_database_defaults_to_sqlite(tmp_path):
    result = _load_settings(tmp_path, SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3"]


def test_database_url_selects_postgres(tmp_path):
    result = _load_settings(tmp_path, SECRET_KEY=STRONG_KEY, DATABASE_URL="postgresql://u@h:5432/d")
    assert result.stdout.split()[1] == "django.db.backends.postgresql"


def test_debug_may_run_without_secret(tmp_path):
    result = _load_settings(tmp_path, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "True"


def test_the_placeholder_key_from_env_example_is_refused_even_in_debug(tmp_path):
    with open(os.path.join(ROOT, ".env.example")) as file:
        example = file.read()
    placeholder = next(
        line.split("=", 1)[1] for line in example.splitlines() if line.startswith("SECRET_KEY=")
    )
    for debug in ("false", "true"):
        result = _load_settings(tmp_path, SECRET_KEY=placeholder, DEBUG=debug)
        assert result.returncode != 0
        assert "ConfigError: SECRET_KEY is the placeholder from .env.example" in result.stderr


@pytest.mark.parametrize(
    "key", ["k", "short-but-not-tiny-0123456789", "a" * 80, "django-insecure-" + "x1y2z3" * 9]
)
def test_weak_keys_are_refused_when_debug_is_off(tmp_path, key):
    result = _load_settings(tmp_path, SECRET_KEY=key)
    assert result.returncode != 0
    assert "ConfigError: SECRET_KEY is" in result.stderr
    if len(key) > 1:
        assert key not in result.stderr  # the message names the problem, never the key
    assert _load_settings(tmp_path, SECRET_KEY=key, DEBUG="true").returncode == 0


def test_check_secret_key_accepts_a_generated_key():
    check_secret_key(STRONG_KEY, debug=False)


def test_tls_proxy_turns_on_redirect_and_hsts_but_not_for_healthz(tmp_path):
    code = (
        "import skinplatform.settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_REDIRECT_EXEMPT, s.TRUSTED_PROXY_COUNT)"
    )
    off = _load_settings(tmp_path, code, SECRET_KEY=STRONG_KEY)
    assert off.stdout.split() == ["False", "0", "True", "['^healthz$']", "0"]
    on = _load_settings(tmp_path, code, SECRET_KEY=STRONG_KEY, BEHIND_TLS_PROXY="true")
    assert on.stdout.split() == ["True", "31536000", "True", "['^healthz$']", "1"]
    tuned = _load_settings(
        tmp_path, code, SECRET_KEY=STRONG_KEY, BEHIND_TLS_PROXY="true",
        SECURE_HSTS_SECONDS="3600", SECURE_SSL_REDIRECT="false",
    )  # fmt: skip
    assert tuned.stdout.split()[:2] == ["False", "3600"]


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _run(
        tmp_path,
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="skinplatform.settings",
        SECRET_KEY=STRONG_KEY,
        DEBUG="false",
        BEHIND_TLS_PROXY="true",
        SECURE_COOKIES="true",
        ALLOWED_HOSTS="skin.example.org",
        CACHE_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_about_a_per_process_cache(tmp_path):
    result = _run(
        tmp_path,
        ["manage.py", "check", "--deploy"],
        DJANGO_SETTINGS_MODULE="skinplatform.settings",
        SECRET_KEY=STRONG_KEY,
        BEHIND_TLS_PROXY="true",
        SECURE_COOKIES="true",
        ALLOWED_HOSTS="skin.example.org",
    )
    assert "accounts.W001" in result.stderr + result.stdout


def test_cache_url_selects_the_backend():
    assert cache_config("")["BACKEND"].endswith("LocMemCache")
    redis_cache = cache_config("redis://redis:6379/1")
    assert redis_cache == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://redis:6379/1",
    }
    with pytest.raises(ConfigError, match="CACHE_URL"):
        cache_config("memcached://m:11211")


def test_malformed_values_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "perhaps")
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG")
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ConfigError, match="X_NUM"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1) == 12
    monkeypatch.setenv("X_RATE", "lots")
    with pytest.raises(ConfigError, match="X_RATE"):
        env_rate("X_RATE", "1/second")
    monkeypatch.setenv("X_RATE", "30/minute")
    assert env_rate("X_RATE", "1/second") == "30/minute"
