"""The Celery app. Task modules live in ``workers/``; queues: ingest, llm, release.

Training has no Celery queue: GPU machines run ``python -m ml worker``, which takes runs over
the REST API.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skinplatform.settings")

app = Celery("skinplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
