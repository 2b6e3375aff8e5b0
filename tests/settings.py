"""Test settings: the real settings, read from the environment, with test-only defaults.

Everything a worker subprocess needs to share with the test process (the database file or
Postgres database, the media folder, the broker folder) lives under one ``VAR_DIR`` per run.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-not-a-secret-but-long-enough-for-the-start-up-check")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="mmskin-test-"))

from skinplatform.settings import *  # noqa: F403
from skinplatform.settings import DATABASES, VAR_DIR

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not pytest-django's in-memory default, so worker subprocesses see the same rows.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
