"""Release build at MM-Skin scale: build seconds, worker peak memory, archive size, download.

    make bench-release                       # 1x and 4x scale on Postgres
    .venv/bin/python tests/benchmarks/bench_release.py --scales 1

Seeds a fresh Postgres database (BENCH_DATABASE_URL, default .../mmskin_bench_release) with 15
books, 11,000 pairs (x scale), 27,000 VQA items (x scale) and one distinct, incompressible ~100
KB PNG per pair, then builds a release in a separate process running the ``release`` queue's
task function. It reports the build's wall time and CPU time (user + system: less sensitive
than wall time to other load on the machine), the peak resident memory of that process
(getrusage), the bytes it read from disk rather than the page cache (getrusage), the archive
size, the throughput of downloading the archive over loopback from gunicorn with an ml_worker
token, and the 1-minute load average when the build ended. The build time is also printed per
1,000 pairs, and at the end the ratio of the largest scale's to the smallest's (a build linear
in size gives 1.0; the target is at most 1.3).
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PAIRS, VQA, BOOKS = 11_000, 27_000, 15
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/mmskin_bench_release"


def _reset_db(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def _photo_png(kb: int = 100) -> bytes:
    """A distinct PNG of about ``kb`` KB that does not compress any further, like a photograph.

    Random pixels in stored (level 0) deflate blocks: cheap to make, and neither the archive
    nor the Parquet files of the HF layout can shrink them, as they cannot shrink real crops.
    """
    side = int((kb * 1024 / 3) ** 0.5)
    pixels = os.urandom(side * side * 3)
    raw = b"".join(b"\x00" + pixels[r * side * 3 : (r + 1) * side * 3] for r in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 0))
        + _chunk(b"IEND", b"")
    )


def _seed(scale: float, media: Path) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from curation.models import Figure, Page, Pair, Panel, Textbook, VQAItem
    from curation.services.storage import sha256_bytes

    pairs_n, vqa_n = int(PAIRS * scale), int(VQA * scale)
    curator = User.objects.create_user("bench-curator")
    curator.groups.set([Group.objects.get_or_create(name="curator")[0]])
    worker = User.objects.create_user("bench-worker")
    worker.groups.set([Group.objects.get_or_create(name="ml_worker")[0]])
    Token.objects.create(user=worker, key="b" * 40)
    books = [
        Textbook.objects.create(
            title=f"Bench atlas {b}", sha256=f"{b:064x}", file=f"books/{b}.pdf",
            size_bytes=1, page_count=1000, status="done",
        )
        for b in range(BOOKS)
    ]  # fmt: skip
    pages = {
        b.pk: Page.objects.bulk_create(
            [Page(textbook=b, number=n + 1, width=600, height=800) for n in range(400)]
        )
        for b in books
    }
    modalities = ["clinical", "dermoscopic", "pathological"]
    made = 0
    fig_no = 0
    batch = 2000
    while made < pairs_n:
        figures, panels_spec = [], []
        for _ in range(batch // 2):
            if made >= pairs_n:
                break
            book = books[fig_no % BOOKS]
            n_panels = 1 + fig_no % 2
            n_panels = min(n_panels, pairs_n - made)
            figures.append(
                Figure(textbook=book, page=pages[book.pk][fig_no % 400], label=f"{fig_no}.1",
                       bbox=[0, 0, 1, 1], caption="c", image="crops/none.png",
                       modality=modalities[fig_no % 3])
            )  # fmt: skip
            panels_spec.append(n_panels)
            made += n_panels
            fig_no += 1
        Figure.objects.bulk_create(figures)
        panels, pairs = [], []
        for figure, n_panels in zip(figures, panels_spec, strict=True):
            for index in range(n_panels):
                data = _photo_png()
                sha = sha256_bytes(data)
                rel = f"crops/{sha[:2]}/{sha}.png"
                (media / rel).parent.mkdir(parents=True, exist_ok=True)
                (media / rel).write_bytes(data)
                panels.append(Panel(figure=figure, index=index, letter="ab"[index],
                                    bbox=[0, 0, 1, 1], image=rel))  # fmt: skip
        Panel.objects.bulk_create(panels)
        for panel in panels:
            figure = panel.figure
            pairs.append(
                Pair(panel=panel, textbook_id=figure.textbook_id, status="accepted",
                     text=f"Fig. {figure.label} ({panel.letter}) Chronic plaque psoriasis on the "
                          "extensor surface of the elbow with silvery scale (arrows).",
                     modality=figure.modality, diagnosis="psoriasis", age=45, sex="male",
                     proposed={"text": "machine caption"})
            )  # fmt: skip
        Pair.objects.bulk_create(pairs)
    pair_ids = list(Pair.objects.order_by("id").values_list("id", flat=True))
    items = []
    for n in range(vqa_n):
        status = "edited" if n % 10 == 0 else "accepted"
        items.append(
            VQAItem(pair_id=pair_ids[n % len(pair_ids)], question_type="diagnosis",
                    question="What is the most likely diagnosis in this image?",
                    answer="Chronic plaque psoriasis.", status=status,
                    generator={"model": "bench"}, prompt_version="v1",
                    draft={"answer": "Eczema." if status == "edited" else
                           "Chronic plaque psoriasis."})
        )  # fmt: skip
        if len(items) >= 5000:
            VQAItem.objects.bulk_create(items)
            items = []
    VQAItem.objects.bulk_create(items)


BUILD_SNIPPET = """
import django, time, json, os, resource
django.setup()
from django.contrib.auth.models import User
from curation.services import releases as svc
from workers.release import build_release
user = User.objects.get(username="bench-curator")
r = svc.create_release(name="bench", version="1.0.0", user=user)
t, cpu = time.perf_counter(), time.process_time()
build_release.run(r.pk, r.build_token)
took, cpu = time.perf_counter() - t, time.process_time() - cpu
r.refresh_from_db()
print(json.dumps({"id": r.pk, "status": r.status, "error": r.error, "seconds": took,
                  "cpu": cpu, "load": os.getloadavg()[0],
                  "archive_size": r.archive_size,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  # 512-byte blocks the build read from disk (page-cache misses)
                  "read_blocks": resource.getrusage(resource.RUSAGE_SELF).ru_inblock,
                  "counts": {k: r.counts.get(k) for k in ("pairs", "vqa", "images")}}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _download(env: dict, release_id: int) -> tuple[float, int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "skinplatform.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", "2", "--timeout", "600"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/releases/{release_id}/archive/"
        request = urllib.request.Request(url, headers={"Authorization": "Token " + "b" * 40})
        for _ in range(100):
            try:
                urllib.request.urlopen(
                    urllib.request.Request(url, headers={**request.headers, "Range": "bytes=0-0"})
                ).read()
                break
            except OSError:
                time.sleep(0.2)
        start = time.perf_counter()
        size = 0
        with urllib.request.urlopen(request) as response:
            while block := response.read(1024 * 1024):
                size += len(block)
        return time.perf_counter() - start, size
    finally:
        server.terminate()
        server.wait(10)


def run(scale: float, db_url: str) -> dict:
    var = Path(
        tempfile.mkdtemp(prefix=f"bench-release-{scale:g}x-", dir=os.environ.get("BENCH_DIR"))
    )
    media = var / "media"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "skinplatform.settings",
        "SECRET_KEY": "bench-only-not-a-secret-but-long-enough-for-the-start-up-check",
        "DATABASE_URL": db_url,
        "VAR_DIR": str(var),
        "MEDIA_ROOT": str(media),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    try:
        _reset_db(db_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                       check=True)  # fmt: skip
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r});"
                        f"from tests.benchmarks.bench_release import _seed; from pathlib import "
                        f"Path; _seed({scale}, Path({str(media)!r}))"],
                       cwd=ROOT, env=env, check=True)  # fmt: skip
        seed_s = time.perf_counter() - t
        out = subprocess.run([sys.executable, "-c", BUILD_SNIPPET], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True)  # fmt: skip
        import json

        build = json.loads(out.stdout.strip().splitlines()[-1])
        if build["status"] != "ready":
            raise SystemExit(f"build failed: {build['error']}")
        seconds, size = _download(env, build["id"])
        return {
            "scale": scale,
            "seed_s": seed_s,
            "build_s": build["seconds"],
            "cpu_s": build["cpu"],
            "load": build["load"],
            # the build process's own peak resident memory (getrusage in that process)
            "peak_rss_mb": build["peak_kb"] / 1024,
            "disk_read_mb": build["read_blocks"] * 512 / 1e6,
            "archive_mb": build["archive_size"] / 1e6,
            "download_mb_s": size / 1e6 / seconds,
            "counts": build["counts"],
        }
    finally:
        shutil.rmtree(var, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,4")
    parser.add_argument("--dedupe-crops", type=int, default=11_000, help="0: skip the dedupe")
    args = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    print(f"{'scale':>5} {'pairs':>7} {'vqa':>7} {'build s':>8} {'s/1k pairs':>10} "
          f"{'cpu s':>6} {'cpu s/1k':>8} {'peak MB':>8} {'archive MB':>10} {'dl MB/s':>8} "
          f"{'load':>5} {'disk read MB':>12}")  # fmt: skip
    rows = []
    for scale in (float(s) for s in args.scales.split(",")):
        r = run(scale, db_url)
        per_k = 1000 * r["build_s"] / r["counts"]["pairs"]
        cpu_per_k = 1000 * r["cpu_s"] / r["counts"]["pairs"]
        rows.append((per_k, cpu_per_k))
        print(
            f"{r['scale']:>4g}x {r['counts']['pairs']:>7} {r['counts']['vqa']:>7} "
            f"{r['build_s']:>8.1f} {per_k:>10.2f} {r['cpu_s']:>6.1f} {cpu_per_k:>8.2f} "
            f"{r['peak_rss_mb']:>8.0f} {r['archive_mb']:>10.0f} {r['download_mb_s']:>8.0f} "
            f"{r['load']:>5.1f} {r['disk_read_mb']:>12.0f}",
            flush=True,
        )
    if len(rows) > 1:
        print(
            f"time per 1,000 pairs, largest / smallest scale: wall {rows[-1][0] / rows[0][0]:.2f}, "
            f"cpu {rows[-1][1] / rows[0][1]:.2f} (target <= 1.3)"
        )
    # -- near-duplicate detection at MM-Skin scale (issue 13; see bench_dedupe.py) ----------
    if args.dedupe_crops:
        import bench_dedupe

        crops, truth, _kinds = bench_dedupe.corpus(args.dedupe_crops, [], seed=1)
        d = bench_dedupe.run(crops, truth, bench_dedupe.Thresholds())
        print(
            f"dedupe at {len(crops)} crops: describe {d['describe_s']:.1f} s, cluster "
            f"{d['cluster_s']:.1f} s (precision {d['precision']:.3f}, recall {d['recall']:.3f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
