"""Review under load: 50 simulated experts over loopback HTTP against gunicorn and Postgres.

    make bench-review          # needs Postgres; DATABASE_URL defaults to a scratch database

Seeds MM-Skin scale (15 books, 11,000 pairs, 27,000 VQA items, 20 experts). All experts log in
first (the password hash is deliberately slow, and a login is not a review step), then each
loops: GET /review/next/ (claims, redirects) -> GET the review page -> POST a decision.
Prints p50/p95/p99 latency per step (inside Django, from the Server-Timing header, and as the
client saw it over loopback), requests per second, CPU milliseconds per request spent by the
server, Postgres and the client, the HTML size of the review page, SQL queries per request at 1x
and 4x database size, and the number of double claims and lost updates (both must be 0).

gunicorn runs as docker-compose's ``web`` service does (4 sync workers) unless told otherwise;
``--gunicorn-workers 2`` matches the workers to a 2-core machine. Server latency includes waiting
for a CPU: with more requests in flight than cores, each one's time inside Django grows.

Then it grows the database to 100,000 pairs with reviews (a fifth of them by two or three
experts) and prints the curator dashboard's render time, per-section time and query count.
Not a test: nothing asserts a time.
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


def wait_for_healthz(port: int, tries: int = 100) -> None:
    """Until the server on ``port`` answers its health probe (gunicorn takes a moment)."""
    for _ in range(tries):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
            return
        except OSError:
            time.sleep(0.2)


def setup_django(db_url: str, var_dir: Path, reuse: bool = False) -> None:
    os.environ.update(
        DATABASE_URL=db_url,
        SECRET_KEY="bench-only-not-a-secret-but-long-enough-for-the-start-up-check",
        VAR_DIR=str(var_dir),
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="skinplatform.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
    )
    if db_url.startswith("sqlite"):  # --dashboard-only also runs on the embedded SQLite
        path = Path(db_url.split(":///", 1)[1])
        if path.exists() and not reuse:
            path.unlink()
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return
    import psycopg

    base, name = db_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not (reuse and exists):
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
            # One crop file per panel, as extraction writes them: a file shared by every pair
            # would make each page list 11,000 "also appears in" pairs.
            Panel(figure=f, index=0, bbox=[50, 60, 500, 400], image=f"crops/{b}-{i}.png")
            for i, f in enumerate(figures)
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


def seed_experts(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    group, _ = Group.objects.get_or_create(name="expert")
    for e in range(count):
        user, _ = get_user_model().objects.get_or_create(username=f"expert{e}")  # no password
        user.groups.add(group)


def queries_per_request(username: str) -> dict[str, int]:
    """SQL statements for one next -> page -> submit cycle, counted in-process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    # force_login: Client.login() calls authenticate() without a request, which axes refuses
    client.force_login(get_user_model().objects.get(username=username))
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
    def __init__(self, host, port, username, cycles, results, claims, submits, barrier=None):
        super().__init__(daemon=True)
        self.barrier = barrier
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
        if self.barrier is not None:
            self.barrier.wait()  # everyone is logged in: the timed cycles start together
            self.conn.close()  # a keep-alive connection may have idled out while waiting
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


def cpu_snapshot(server_pid: int) -> list[dict[int, float]]:
    """CPU seconds used so far by each gunicorn, Postgres and benchmark process, by pid."""
    import psutil

    master = psutil.Process(server_pid)
    groups = (
        [master, *master.children(recursive=True)],
        [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "") == "postgres"],
        [psutil.Process()],
    )
    snapshot = []
    for group in groups:
        used = {}
        for proc in group:
            try:
                times = proc.cpu_times()
            except psutil.Error:  # it ended
                continue
            used[proc.pid] = times.user + times.system
        snapshot.append(used)
    return snapshot


def cpu_spent(before: list[dict], after: list[dict]) -> list[float]:
    """Per group, CPU seconds between two snapshots (a process new since counts from zero)."""
    return [
        sum(t - start.get(pid, 0.0) for pid, t in end.items())
        for start, end in zip(before, after, strict=True)
    ]


def seed_reviews(expert_ids: list[int]) -> int:
    """A review for 9 in 10 pairs, a second expert on 1 in 5, a third on 1 in 20; in SQL.

    Decisions and modalities agree most of the time (so kappa is not 0), timestamps spread
    over 30 days, seconds per item 5-65; the pairs' status follows the reviews.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return _seed_reviews_portable(expert_ids)
    n = len(expert_ids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO curation_review (item_type, item_id, textbook_id, expert_id, decision,
                                         modality, values, adjudication, independent, seconds,
                                         created_at)
            SELECT 'pair', p.id, p.textbook_id,
                   (%(experts)s::bigint[])[1 + (p.id + 7 * k) %% %(n)s],
                   CASE WHEN (CASE WHEN random() < 0.1 THEN random() < 0.2
                                   ELSE (p.id * 7919) %% 100 < 20 END) THEN 'rejected'
                        WHEN random() < 0.3 THEN 'edited' ELSE 'accepted' END,
                   CASE WHEN random() < 0.15
                        THEN (ARRAY['clinical', 'dermoscopic', 'pathological'])
                             [1 + floor(random() * 3)::int]
                        WHEN (p.id * 31) %% 10 < 7 THEN 'clinical'
                        WHEN (p.id * 31) %% 10 < 9 THEN 'dermoscopic' ELSE 'pathological' END,
                   '{}'::jsonb, false, true, 5 + random() * 60,
                   now() - random() * interval '30 days'
            FROM curation_pair p
            CROSS JOIN generate_series(0, 2) AS k
            WHERE p.status = 'proposed' AND p.id %% 10 <> 0
              AND (k = 0 OR (k = 1 AND p.id %% 5 = 1) OR (k = 2 AND p.id %% 20 = 1))
            """,
            {"experts": expert_ids, "n": n},
        )  # fmt: skip
        added = cursor.rowcount
        cursor.execute(
            """
            UPDATE curation_pair p SET status = s.status, version = p.version + 1
            FROM (SELECT item_id, CASE
                    WHEN count(*) = 1 THEN min(decision)
                    WHEN count(DISTINCT decision = 'rejected') > 1
                         OR count(DISTINCT modality) > 1 THEN 'disputed'
                    ELSE min(decision) END AS status
                  FROM curation_review WHERE NOT adjudication GROUP BY item_id) s
            WHERE s.item_id = p.id AND p.status = 'proposed'
            """
        )
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    return added


def _seed_reviews_portable(expert_ids: list[int]) -> int:
    """``seed_reviews`` for SQLite: the same mix, drawn in Python and bulk-inserted."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from curation.models import Pair, Review

    rng = random.Random(42)
    now = timezone.now()
    n = len(expert_ids)
    made, when, status = [], [], {}
    rows = Pair.objects.filter(status="proposed").values_list("id", "textbook_id")
    for pid, book in rows.iterator(chunk_size=10_000):
        if pid % 10 == 0:
            continue
        ks = [0] + ([1] if pid % 5 == 1 else []) + ([2] if pid % 20 == 1 else [])
        decisions = []
        for k in ks:
            noisy = rng.random() < 0.1
            rejected = rng.random() < 0.2 if noisy else (pid * 7919) % 100 < 20
            decision = "rejected" if rejected else "edited" if rng.random() < 0.3 else "accepted"
            if rng.random() < 0.15:
                modality = rng.choice(["clinical", "dermoscopic", "pathological"])
            else:
                m = (pid * 31) % 10
                modality = "clinical" if m < 7 else "dermoscopic" if m < 9 else "pathological"
            decisions.append((decision, modality))
            when.append(now - timedelta(seconds=rng.random() * 30 * 86400))
            made.append(Review(item_type="pair", item_id=pid, textbook_id=book,
                               expert_id=expert_ids[(pid + 7 * k) % n], decision=decision,
                               modality=modality, values={},
                               seconds=5 + rng.random() * 60))  # fmt: skip
        if len(decisions) == 1:
            status[pid] = decisions[0][0]
        elif len({d == "rejected" for d, _ in decisions}) > 1 or len({m for _, m in decisions}) > 1:
            status[pid] = "disputed"
        else:
            status[pid] = min(d for d, _ in decisions)
    with transaction.atomic():
        Review.objects.bulk_create(made, batch_size=5000)
        for review, at in zip(made, when, strict=True):  # auto_now_add set "now" on insert
            review.created_at = at
        Review.objects.bulk_update(made, ["created_at"], batch_size=5000)
        by_status: dict[str, list[int]] = defaultdict(list)
        for pid, st in status.items():
            by_status[st].append(pid)
        for st, ids in by_status.items():
            for i in range(0, len(ids), 900):
                Pair.objects.filter(pk__in=ids[i : i + 900]).update(status=st)
    return len(made)


def _db_backend_cpu():
    """A function giving the CPU seconds this connection's database process used so far (on a
    shared machine, wall time measures the neighbours; CPU time measures the dashboard).
    SQLite runs inside this process, so its CPU is already in ``process_time``."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return lambda: 0.0
    import psutil

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        proc = psutil.Process(cursor.fetchone()[0])

    def used() -> float:
        times = proc.cpu_times()
        return times.user + times.system

    return used


def dashboard_at_scale(items: int, reuse: bool = False) -> None:
    """Grow the database to ``items`` pairs with reviews and time the curator dashboard."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from curation.models import Pair, Review
    from curation.selectors import dashboard
    from curation.services import drafting

    t0 = time.perf_counter()
    missing = items - Pair.objects.count()
    if missing > 0 and not (reuse and Review.objects.exists()):
        books = max(1, round(missing / 733))
        seed(books, missing, missing, 0, start=2000)
    experts = list(
        get_user_model()
        .objects.filter(username__startswith="expert")
        .order_by("id")
        .values_list("id", flat=True)[:20]
    )
    if not (reuse and Review.objects.exists()):
        seed_reviews(experts)
    from curation.services import agreement_counts

    t1 = time.perf_counter()
    agreement_counts.rebuild()  # the reviews were bulk-loaded past the service that keeps them
    print(f"agreement counters rebuilt in {time.perf_counter() - t1:.1f}s")
    curator = get_user_model().objects.get_or_create(username="curator0")[0]
    curator.groups.add(Group.objects.get_or_create(name="curator")[0])
    multi = Review.objects.values("item_id").annotate(n=Count("id")).filter(n__gte=2).count()
    print(
        f"\ndashboard at {Pair.objects.count():,} pairs, {Review.objects.count():,} reviews "
        f"({multi:,} pairs reviewed by 2-3 experts); seeded in {time.perf_counter() - t0:.0f}s"
    )
    client = Client()
    client.force_login(curator)
    client.get("/dashboard/")  # warm: template compilation, first-use caches
    backend = _db_backend_cpu()
    walls, cpus, counts = [], [], []
    for _ in range(9):
        with CaptureQueriesContext(connection) as ctx:
            start, cpu0, db0 = time.perf_counter(), time.process_time(), backend()
            response = client.get("/dashboard/")
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu0 + backend() - db0)
        counts.append(len(ctx))
    assert response.status_code == 200, response.status_code
    print(
        f"GET /dashboard/: median {statistics.median(walls) * 1000:.1f} ms, "
        f"min {min(walls) * 1000:.1f} ms (9 runs, in-process), {counts[-1]} SQL queries, "
        f"{len(response.content) / 1024:.1f} KB; CPU per render (Django + its database "
        f"process): median {statistics.median(cpus) * 1000:.1f} ms, "
        f"min {min(cpus) * 1000:.1f} ms; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    sections = {
        "progress": dashboard.progress,
        "throughput": dashboard.throughput,
        "median seconds": dashboard.median_seconds,
        "agreement": dashboard.agreement,
        "vqa progress": drafting.vqa_progress,
    }
    cells = []
    for name, func in sections.items():
        times = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as ctx:
                start = time.perf_counter()
                func()
                times.append(time.perf_counter() - start)
        cells.append(f"{name} {min(times) * 1000:.1f} ms/{len(ctx)}q")
    if connection.vendor != "postgresql":  # minutes on SQLite: the reason for the counters
        print("  per section (best of 3, ms/queries): " + ", ".join(cells))
        return
    start = time.perf_counter()
    same = dashboard.agreement_from_reviews() == dashboard.agreement()
    cells.append(
        f"agreement from scratch (the reference, once) {(time.perf_counter() - start) * 1000:.0f}"
        f" ms, {'equal to' if same else 'DIFFERENT FROM'} the counters"
    )
    print("  per section (best of 3, ms/queries): " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument(
        "--gunicorn-workers", type=int, default=4, help="docker-compose's web runs 4"
    )
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument(
        "--worker-class", default="sync", help="docker-compose's web runs sync workers"
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--login-during-run",
        action="store_true",
        help="let experts log in while others already review (the slow password hash then "
        "competes with the timed requests for the CPU)",
    )
    parser.add_argument(
        "--dashboard-items", type=int, default=100_000, help="0 skips the dashboard phase"
    )
    parser.add_argument(
        "--reuse-db", action="store_true",
        help="with --dashboard-only: keep a database an earlier run seeded (quicker reruns)",
    )  # fmt: skip
    parser.add_argument(
        "--dashboard-only", action="store_true",
        help="skip the review load: seed 20 experts, grow to --dashboard-items, time the dashboard",
    )  # fmt: skip
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="mmskin-bench-review-"))
    (var_dir / "static").mkdir()
    db_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not db_url.startswith("postgres") and not (
        args.dashboard_only and db_url.startswith("sqlite")
    ):
        raise SystemExit("bench-review needs Postgres: set DATABASE_URL=postgresql://...")
    setup_django(db_url, var_dir, reuse=args.dashboard_only and args.reuse_db)
    if args.dashboard_only:
        seed_experts(20)
        dashboard_at_scale(args.dashboard_items or 100_000, reuse=args.reuse_db)
        return
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
         "--workers", str(args.gunicorn_workers), "--threads", str(args.gunicorn_threads),
         "--worker-class", args.worker_class, "--timeout", "300", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ},
    )  # fmt: skip
    try:
        wait_for_healthz(port)
        results: dict[str, list] = defaultdict(list)
        claims: list = []
        submits: list = []
        barrier = None if args.login_during_run else threading.Barrier(args.experts + 1)
        experts = [
            Expert("127.0.0.1", port, f"expert{i}", args.cycles, results, claims, submits, barrier)
            for i in range(args.experts)
        ]
        login_start = time.perf_counter()
        for e in experts:
            e.start()
        if barrier is not None:
            barrier.wait()
        logins = time.perf_counter() - login_start
        cpu0 = cpu_snapshot(server.pid)
        start = time.perf_counter()
        for e in experts:
            e.join()
        wall = time.perf_counter() - start
        cpu1 = cpu_snapshot(server.pid)
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
    server_cpu, pg_cpu, client_cpu = (x * 1000 / requests for x in cpu_spent(cpu0, cpu1))

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    threads = f" x {args.gunicorn_threads} threads" if args.gunicorn_threads > 1 else ""
    print(f"\n{args.experts} experts x {args.cycles} cycles, gunicorn {args.gunicorn_workers} "
          f"{args.worker_class} workers{threads}, {os.cpu_count()} CPUs shared by clients, "
          f"server and Postgres; load average {load}")  # fmt: skip
    if barrier is not None:
        print(f"{args.experts} logins took {logins:.1f}s before the timed cycles")
    else:
        print("logins ran during the timed cycles (--login-during-run)")
    print("latency in ms: server = Server-Timing header (in Django), client = round trip")
    print(f"{'step':<8}{'n':>6}{'srv p50':>9}{'srv p95':>9}{'srv p99':>9}{'cli p50':>9}"
          f"{'cli p95':>9}{'cli p99':>9}")  # fmt: skip
    for step in ("next", "page", "submit"):
        srv, cli = results[f"{step}_server"], results[step]
        cells = [pct(srv, 50), pct(srv, 95), pct(srv, 99), pct(cli, 50), pct(cli, 95), pct(cli, 99)]
        print(f"{step:<8}{len(cli):>6}" + "".join(f"{c:>9.1f}" for c in cells))
    print(f"requests/s: {requests / wall:.0f} ({requests} in {wall:.1f}s)")
    print(f"CPU ms per request: server {server_cpu:.1f}, Postgres {pg_cpu:.1f}, "
          f"client {client_cpu:.1f}")  # fmt: skip
    print(f"review page HTML: {statistics.median(results['page_bytes']) / 1024:.1f} KB (median)")
    print(f"SQL queries per request at 1x: {q1}; at 4x: {q4}")
    print(f"double claims: {double_claims}   lost updates: {lost}   "
          f"decisions: {len(submits)}")  # fmt: skip
    if args.dashboard_items:
        dashboard_at_scale(args.dashboard_items)


if __name__ == "__main__":
    main()
