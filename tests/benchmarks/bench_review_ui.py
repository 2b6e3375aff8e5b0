"""Review as one expert feels it: keypress to the next pair ready, in headless Chromium.

    PYTHONPATH=$PWD python tests/benchmarks/bench_review_ui.py [--pairs 40] [--pages 24]

Builds the demo's data the demo's way (the generated sample atlas, imported and extracted by
the real pipeline, into a scratch SQLite database under a temporary VAR_DIR), serves it with
gunicorn as ``make demo`` does (2 workers x 4 threads, static files by whitenoise), and drives
one expert through the queue with the keyboard: mostly ``a``, sometimes a modality key first,
a reject by arrow keys, a skip. For each decision it times, inside the page, from the keydown
of the deciding key to the moment the next pair is swapped in and its crop has loaded
(``performance.now()``) and prints p50/p95/max overall and per action, with the part
until the response was in and the part inside Django (Server-Timing). A page that reloaded
instead of swapping would lose the timing hooks, and the run stops saying so.

Accept queues VQA drafting; as in the demo a worker would take it, here the broker is a
folder nobody reads, so drafting costs the request nothing it would not cost in the demo.
Not a test: nothing asserts a time (the target is p95 < 150 ms on this machine).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.benchmarks.bench_review import wait_for_healthz  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# In the page: when a deciding key goes down, and when the next pair is in with its crop.
HOOKS = """
(() => {
  window.__times = []; window.__split = []; window.__t0 = null;
  window.__shown = document.getElementById('pair').dataset.pair;
  document.addEventListener('keydown', e => {
    if ('asr'.includes(e.key) || e.key === 'Enter') window.__t0 = performance.now();
  }, true);
  document.body.addEventListener('htmx:afterSettle', () => {
    const root = document.getElementById('pair');
    if (!root || root.dataset.pair === window.__shown || window.__t0 === null) return;
    window.__shown = root.dataset.pair;
    const t0 = window.__t0, img = document.getElementById('crop');
    const done = () => {
      window.__times.push(performance.now() - t0);
      // The decision's request, as the browser saw it, and Django's own time (Server-Timing).
      const posts = performance.getEntriesByType('resource').filter(
        e => e.initiatorType === 'xmlhttprequest' && e.startTime >= t0 - 1);
      const req = posts[0];
      const server = req && req.serverTiming.length ? req.serverTiming[0].duration : null;
      window.__split.push([req ? req.responseEnd - t0 : null, server]);
    };
    if (img.complete && img.naturalWidth) done();
    else img.addEventListener('load', done, { once: true });
  });
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(var_dir: Path, pages: int) -> None:
    """The demo's data, made by the demo's own commands, with ingest run in this process."""
    os.environ.update(
        SECRET_KEY="bench-only-not-a-secret-but-long-enough-for-the-start-up-check",
        VAR_DIR=str(var_dir),
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="skinplatform.settings",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("demo_setup", pages=pages)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def drive(url: str, pairs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}accounts/login/")
        page.fill("#id_username", "expert")
        page.fill("#id_password", "expert-demo")
        page.click("button[type=submit]")
        console: list[str] = []
        page.on("console", lambda msg: console.append(msg.text))
        page.goto(f"{url}review/next/")
        page.wait_for_selector("#pair")
        page.evaluate(HOOKS)
        page.wait_for_timeout(300)  # let the first pair's page settle (panel status, images)
        plan = ["accept", "accept", "modality+accept", "accept", "reject", "accept", "skip"]
        for i in range(pairs):
            action = plan[i % len(plan)]
            if action == "modality+accept":
                page.keyboard.press("2")
                page.keyboard.press("a")
            elif action == "reject":
                page.keyboard.press("r")
                page.keyboard.press("ArrowDown")
                page.keyboard.press("Enter")
            else:
                page.keyboard.press("a" if action == "accept" else "s")
            try:
                page.wait_for_function(f"() => window.__times && window.__times.length > {i}",
                                       timeout=15_000)  # fmt: skip
            except Exception as exc:
                if "/review/next/" in page.url or page.locator("#pair").count() == 0:
                    print(f"queue empty after {i} pairs")
                    break
                shot = Path(tempfile.gettempdir()) / "bench_review_ui_failure.png"
                page.screenshot(path=str(shot))
                raise SystemExit(
                    f"no next pair was swapped in after decision {i + 1} ({action}); the page "
                    f"is at {page.url}, screenshot {shot}; browser console: {console[-5:]}"
                ) from exc
            times.setdefault(action, []).append(page.evaluate(f"window.__times[{i}]"))
            response, server = page.evaluate(f"window.__split[{i}]")
            if response is not None:
                times.setdefault("(response in)", []).append(response)
            if server is not None:
                times.setdefault("(inside Django)", []).append(server)
            page.wait_for_timeout(150)  # an expert looks before the next key
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="decisions to time")
    parser.add_argument("--pages", type=int, default=24, help="pages of the sample atlas")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="mmskin-bench-review-ui-"))
    t0 = time.perf_counter()
    prepare(var_dir, args.pages)
    from curation.models import Pair

    print(f"demo data: {Pair.objects.count()} pairs in {time.perf_counter() - t0:.0f} s")
    port = free_port()
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"}  # a worker's job, as in the demo
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "skinplatform.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_for_healthz(port)
        times = drive(f"http://127.0.0.1:{port}/", args.pairs)
    finally:
        web.terminate()
        web.wait(timeout=10)
    every = [t for action, values in times.items() if not action.startswith("(") for t in values]
    if not every:
        raise SystemExit("no decision was timed")
    print(f"keypress -> next pair ready (swapped, crop loaded), {len(every)} decisions, ms:")
    print(f"  all      p50 {statistics.median(every):6.1f}  p95 {percentile(every, 0.95):6.1f}"
          f"  max {max(every):6.1f}")  # fmt: skip
    for action, values in sorted(times.items()):
        print(f"  {action:<16} n={len(values):<3} p50 {statistics.median(values):6.1f}"
              f"  p95 {percentile(values, 0.95):6.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
