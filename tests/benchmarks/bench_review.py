"""Review under load: 50 simulated experts over loopback HTTP against gunicorn and Postgres.

    make bench-review          # needs Postgres; DATABASE_URL defaults to a scratch database

Seeds MM-Skin scale (15 books, 11,000 pairs, 27,000 VQA items, 20 experts), then each simulated
expert loops: GET /review/next/ (claims, redirects) -> GET the review page -> POST a decision.
Prints p50/p95/p99 latency per step (inside Django, from the Server-Timing header, and as the
client saw it over loopback), requests per second,
the HTML size of the review page, SQL queries per request at 1x and 4x database size, and the
number of double claims and lost updates (both must be 0). Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/mmskin_bench_review"
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def setup_django(db_url: str, var_dir: Path) -> None:
    os.environ.update(
        DATABASE_URL=db_url,
        SECRET_KEY="bench-only",
        VAR_DIR=str(var_dir),
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="skinplatform.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
    )
    import psycopg

    base, name = db_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(books: int, pairs: int, vqa: int, experts: int, start: int = 0) -> list[str]:
    """Bulk-insert the corpus; returns the experts' usernames."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from curation.models import Figure, Page, Pair, Panel, Textbook, VQAItem

    per_book = pairs // books
    for b in range(books):
        book = Textbook.objects.create(
            title=f"Atlas {start + b}", sha256=f"{start + b:064x}", file="books/x.pdf",
            size_bytes=1, page_count=per_book // 2 + 1, status="done",
        )  # fmt: skip
        pages = Page.objects.bulk_create(
            Page(textbook=book, number=n, width=595, height=842, image="pages/p.jpg")
            for n in range(1, per_book // 2 + 2)
        )
        figures = Figure.objects.bulk_create(
            Figure(textbook=book, page=pages[i // 2], label=f"{b}.{i}", bbox=[50, 60, 500, 400],
                   caption=f"Fig. {b}.{i} Plaque psoriasis on the elbow of a 40-year-old man.",
                   image="crops/f.png", modality="clinical",
                   mentions=[{"page": 1, "text": "as shown in the figure"}])
            for i in range(per_book)
        )  # fmt: skip
        panels = Panel.objects.bulk_create(
            Panel(figure=f, index=0, bbox=[50, 60, 500, 400], image="crops/p.png") for f in figures
        )
        proposal = {"text": "Plaque psoriasis.", "modality": "clinical", "diagnosis": "psoriasis",
                    "age": 40, "sex": "male", "flags": [], "modality_confidence": 0.9}  # fmt: skip
        made = Pair.objects.bulk_create(
            Pair(panel=p, textbook=book, text="Plaque psoriasis.", modality="clinical",
                 diagnosis="psoriasis", age=40, sex="male", proposed=proposal)
            for p in panels
        )  # fmt: skip
        per_pair = max(1, vqa // pairs)
        VQAItem.objects.bulk_create(
            VQAItem(pair=pair, question_type="diagnosis", question="What is shown?",
                    answer="Plaque psoriasis.", draft={"q": "What is shown?"})
            for pair in made for _ in range(per_pair)
        )  # fmt: skip
    group, _ = Group.objects.get_or_create(name="expert")
    names = []
    for e in range(experts):
        name = f"expert{start + e}"
        user, _ = get_user_model().objects.get_or_create(username=name)
        user.set_password("bench-pw")
        user.save()
        user.groups.add(group)
        names.append(name)
    return names


def queries_per_request(username: str) -> dict[str, int]:
    """SQL statements for one next -> page -> submit cycle, counted in-process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.login(username=username, password="bench-pw")
    counts = {}
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/review/next/")
    counts["next"] = len(ctx)
    url = response["Location"]
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url)
    counts["page"] = len(ctx)
    version = VERSION_RE.search(page.content.decode()).group(1)
    with CaptureQueriesContext(connection) as ctx:
        client.post(url, {"action": "accept", "version": version, "text": "Plaque psoriasis.",
                          "modality": "clinical", "diagnosis": "psoriasis", "age": "40",
                          "sex": "male"})  # fmt: skip
    counts["submit"] = len(ctx)
    return counts


class Expert(threading.Thread):
    def __init__(self, host, port, username, cycles, results, claims, submits):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.username, self.cycles = username, cycles
        self.results, self.claims, self.submits = results, claims, submits
        self.cookies: dict[str, str] = {}

    def _request(self, method, path, body=None, step=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = "http://127.0.0.1/"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - t0
        if step:
            self.results[step].append(elapsed)
            timing = response.getheader("Server-Timing") or "app;dur=nan"
            self.results[f"{step}_server"].append(float(timing.split("dur=")[1]) / 1000)
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response, data

    def login(self):
        _, html = self._request("GET", "/accounts/login/")
        token = CSRF_RE.search(html.decode()).group(1)
        form = f"csrfmiddlewaretoken={token}&username={self.username}&password=bench-pw"
        response, _ = self._request("POST", "/accounts/login/", form)
        assert response.status == 302, (response.status, _[:3000])

    def run(self):
        from urllib.parse import quote

        self.login()
        rng = random.Random(self.username)
        for _ in range(self.cycles):
            response, _ = self._request("GET", "/review/next/", step="next")
            location = response.getheader("Location") or ""
            if "/review/pairs/" not in location:
                break
            pair_id = int(location.rstrip("/").rsplit("/", 1)[1])
            self.claims.append((self.username, pair_id))
            response, html = self._request("GET", location, step="page")
            text = html.decode()
            self.results["page_bytes"].append(len(html))
            version = VERSION_RE.search(text).group(1)
            token = CSRF_RE.search(text).group(1)
            if rng.random() < 0.2:
                decision = "action=reject&reason=bad_crop"
            else:
                decision = "action=accept&modality=" + rng.choice(["clinical", "dermoscopic"])
            fields = f"text={quote('Plaque psoriasis.')}&diagnosis=psoriasis&age=40&sex=male"
            form = f"csrfmiddlewaretoken={token}&version={version}&{decision}&{fields}"
            response, _ = self._request("POST", location, form, step="submit")
            if response.status == 302:
                self.submits.append((self.username, pair_id))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="mmskin-bench-review-"))
    db_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not db_url.startswith("postgres"):
        raise SystemExit("bench-review needs Postgres: set DATABASE_URL=postgresql://...")
    setup_django(db_url, var_dir)
    t0 = time.perf_counter()
    n = lambda x: int(x * args.scale)  # noqa: E731
    users = seed(15, n(11_000), n(27_000), 20)
    print(f"seeded 15 books, {n(11_000)} pairs, {n(27_000)} VQA items, 20 experts "
          f"in {time.perf_counter() - t0:.1f}s", flush=True)  # fmt: skip
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum does after a bulk load
    q1 = queries_per_request(users[0])
    seed(45, n(33_000), n(81_000), 0, start=1000)  # grow the database to 4x
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    q4 = queries_per_request(users[1])

    from django.contrib.auth import get_user_model

    for i in range(20, args.experts):
        user = get_user_model().objects.create_user(f"expert{i}", password="bench-pw")
        user.groups.add(*get_user_model().objects.get(username="expert0").groups.all())

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "skinplatform.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.gunicorn_workers), "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ},
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        results: dict[str, list] = defaultdict(list)
        claims: list = []
        submits: list = []
        experts = [
            Expert("127.0.0.1", port, f"expert{i}", args.cycles, results, claims, submits)
            for i in range(args.experts)
        ]
        start = time.perf_counter()
        for e in experts:
            e.start()
        for e in experts:
            e.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(30)

    from curation.models import Pair, Review

    per_pair = defaultdict(set)
    for user, pair_id in claims:
        per_pair[pair_id].add(user)
    double_claims = sum(1 for holders in per_pair.values() if len(holders) > 1)
    submitted = {pair_id for _, pair_id in submits}
    reviews = defaultdict(int)
    for item_id in Review.objects.filter(item_id__in=submitted).values_list("item_id", flat=True):
        reviews[item_id] += 1
    decided = Pair.objects.filter(pk__in=submitted).exclude(status="proposed").count()
    lost = sum(1 for p in submitted if reviews[p] != 1) + (len(submitted) - decided)
    requests = sum(len(results[k]) for k in ("next", "page", "submit"))

    print(f"\n{args.experts} experts x {args.cycles} cycles, gunicorn {args.gunicorn_workers}x4 "
          f"threads, {os.cpu_count()} CPUs shared by clients and server")  # fmt: skip
    print("latency in ms: server = Server-Timing header (in Django), client = round trip")
    print(f"{'step':<8}{'n':>6}{'srv p50':>9}{'srv p95':>9}{'srv p99':>9}{'cli p50':>9}"
          f"{'cli p95':>9}{'cli p99':>9}")  # fmt: skip
    for step in ("next", "page", "submit"):
        srv, cli = results[f"{step}_server"], results[step]
        cells = [pct(srv, 50), pct(srv, 95), pct(srv, 99), pct(cli, 50), pct(cli, 95), pct(cli, 99)]
        print(f"{step:<8}{len(cli):>6}" + "".join(f"{c:>9.1f}" for c in cells))
    print(f"requests/s: {requests / wall:.0f} ({requests} in {wall:.1f}s)")
    print(f"review page HTML: {statistics.median(results['page_bytes']) / 1024:.1f} KB (median)")
    print(f"SQL queries per request at 1x: {q1}; at 4x: {q4}")
    print(f"double claims: {double_claims}   lost updates: {lost}   "
          f"decisions: {len(submits)}")  # fmt: skip


if __name__ == "__main__":
    main()
