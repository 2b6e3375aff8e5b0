"""Serve the demo: migrate, create logins, import the sample book, run a worker and the web UI.

One process tree on embedded defaults (SQLite, filesystem broker); Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the demo web server and a Celery worker with the sample textbook loaded."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--pages", type=int, default=24)
        parser.add_argument(
            "--exit-when-ready",
            action="store_true",
            help="stop once the sample book is processed and the page is served (for timing)",
        )

    def handle(self, *args, port: int, pages: int, exit_when_ready: bool, **opts) -> None:
        # Ctrl-C raises KeyboardInterrupt; make SIGTERM unwind too, so the children are stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "skinplatform", "worker",
             "-Q", "ingest,llm,release", "-c", "2", "-l", "warning", "--beat"],
            env=env, start_new_session=True,
        )  # fmt: skip
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "skinplatform.wsgi", "--bind",
             f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--log-level", "warning"],
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            call_command("demo_setup", pages=pages)
            url = f"http://127.0.0.1:{port}/"
            self._wait_served(f"{url}healthz")
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nMM-Skin curation demo at {url}\n"
                    "  curator login: curator / curator-demo\n"
                    "  expert login:  expert / expert-demo\n"
                    f"  data under {settings.VAR_DIR}\nCtrl-C stops it.\n"
                )
            )
            if exit_when_ready:
                self._wait_book_done()
                return
            while worker.poll() is None and web.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (web, worker):
                if proc.poll() is None:
                    proc.terminate()  # the main process stops its own children
            for proc in (web, worker):
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def _wait_served(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{url} did not answer within {timeout}s")

    def _wait_book_done(self, timeout: float = 300) -> None:
        from curation.models import Textbook

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not Textbook.objects.exclude(status__in=["done", "failed"]).exists():
                self.stdout.write("sample book processed")
                return
            time.sleep(0.5)
        raise RuntimeError("the sample book was not processed in time")
