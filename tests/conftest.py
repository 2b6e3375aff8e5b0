"""Shared fixtures: users per role, API clients, the sample book, and a real Celery worker."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_sessionstart(session) -> None:
    """In CI the suite must run against the real services, never quietly on the fallbacks."""
    if not IN_CI:
        return
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(f"CI=true but the database is {engine}; export DATABASE_URL", returncode=3)
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        pytest.exit("CI=true but CELERY_BROKER_URL is not Redis/RabbitMQ", returncode=3)


@pytest.fixture(autouse=True)
def isolated_media(settings, tmp_path):
    """Each test stores files in its own folder, so tests cannot see each other's uploads."""
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media)},
        },
    }
    return media


@pytest.fixture(autouse=True)
def fresh_cache():
    """API throttles count requests in the cache: one test's requests must not slow the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    def make(username: str, *roles: str, password: str = "pw-for-tests"):
        user = get_user_model().objects.create_user(username=username, password=password)
        # get_or_create: transactional tests flush the groups the migration made
        user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
        return user

    return make


@pytest.fixture
def api_client_for(make_user):
    """An APIClient authenticated with a DRF token for a user holding ``roles``."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(*roles: str, username: str | None = None) -> APIClient:
        user = make_user(username or "_".join(roles) or "noroles", *roles)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        client.user = user
        return client

    return make


@pytest.fixture(scope="session")
def sample_book(tmp_path_factory):
    """The generated sample textbook (24 pages) and its gold figures."""
    from curation.samplebook import generate_book

    path = tmp_path_factory.mktemp("sample") / "sample-atlas.pdf"
    gold = generate_book(path, seed=0)
    return path, gold


@pytest.fixture
def eager_celery(settings):
    """Run tasks inline in the test process (tests of task logic, not of the broker)."""
    from skinplatform.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def database_url_for_subprocess() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{conf['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` subprocess on the test database and broker."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "ingest") -> None:
        self.env = env
        self.log_path = log_path
        self.queues = queues
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "skinplatform", "worker",
                "-Q", self.queues, "-c", "1", "--pool", "prefork", "-l", "info",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text(errors="replace"):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: nothing gets to clean up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def purge_broker() -> None:
    """Drop messages left by earlier tests, including Redis' unacknowledged ones."""
    from django.conf import settings

    from skinplatform.celery import app

    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        import redis

        client = redis.Redis.from_url(url)
        for key in ("ingest", "llm", "release", "gpu", "unacked", "unacked_index"):
            client.delete(key)
        return
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return
    with app.connection_for_write() as conn:
        for queue in ("ingest", "llm", "release", "gpu"):
            with contextlib.suppress(Exception):  # an undeclared queue has nothing to purge
                conn.default_channel.queue_purge(queue)


@pytest.fixture
def celery_worker_factory(transactional_db, tmp_path):
    """Start real worker processes; each is stopped (or already killed) at teardown."""
    from django.conf import settings

    purge_broker()
    started: list[WorkerProcess] = []

    def start(queues: str = "ingest", **extra_env: str) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "VAR_DIR": str(settings.VAR_DIR),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DATABASE_URL": database_url_for_subprocess(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "INGEST_CHUNK_PAGES": str(settings.INGEST_CHUNK_PAGES),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        log = tmp_path / f"worker-{len(started)}-{queues}.log"
        worker = WorkerProcess(env, log, queues=queues)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
    purge_broker()


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


@pytest.fixture
def pdf_dir(tmp_path) -> Iterator[Path]:
    yield tmp_path
