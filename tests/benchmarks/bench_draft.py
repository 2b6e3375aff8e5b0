"""Drafting throughput against a fake OpenAI-compatible server with 300 ms per request.

    make bench-draft

Drafts one item for each of 1,000 pairs from two worker processes (16 requests in flight each,
32 in all) with the real client, and prints drafts per second, the overhead per draft beyond
the server's latency, and the concurrency the server saw. Ideal: 1,000 x 0.3 s / 32 = 9.4 s.

    python tests/benchmarks/bench_draft.py --vision

drafts the morphology item from its vision prompt instead, each request carrying a panel crop
of review size (a 4 x 3 inch panel at CROP_DPI 150: 600 x 450 px, photo-like PNG, distinct per
pair) as a data: URI, which the fake server decodes; it also prints the bytes per request and
per image. Target: within 1.3x of ideal. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

go = None  # the start signal, shared with the forked workers


CROP_SIZE = (600, 450)  # a 4 x 3 inch panel at CROP_DPI 150


def review_crop(seed: int, size: tuple[int, int] = CROP_SIZE) -> bytes:
    """A photo-like PNG: a smooth skin tone, a darker lesion blob and sensor noise.

    Flat synthetic images compress to almost nothing; the noise keeps the PNG near the size
    of a real photograph's crop, so the bytes on the wire are honest.
    """
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h, rng.uniform(0.1, 0.25) * w
    blob = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))[..., None]
    skin = np.array([224, 172, 150], np.float32) + rng.normal(0, 6, 3)
    lesion = np.array([150, 60, 55], np.float32) + rng.normal(0, 10, 3)
    pixels = skin * (1 - blob) + lesion * blob + rng.normal(0, 4, (h, w, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


#: The vision question types of a clinical image, as the llm task drafts them for one pair.
VISION_TYPES = ["morphology", "modality", "site", "verification"]


def _worker(
    url: str, pair_ids: list[int], concurrency: int, vision: bool, types: int, out: mp.Queue
) -> None:
    from curation.drafting import DraftSource, LLMClient, draft_items

    client = LLMClient(
        base_url=url, model="fake", api_key="k", concurrency=concurrency, vision=vision
    )
    # Made before the clock starts: a worker reads crops from storage, it does not paint them.
    images = {pair_id: review_crop(pair_id) for pair_id in pair_ids} if vision else {}
    question_types = VISION_TYPES[:types] if vision else ["diagnosis"]
    out.put(("ready", None))

    def one(pair_id: int) -> list[tuple[float, int]]:
        source = DraftSource(
            pair_id=pair_id,
            caption=f"Fig. {pair_id} Plaque psoriasis on the elbow of a 40-year-old man.",
            modality="clinical",
            diagnosis="psoriasis",
            image=images.get(pair_id),
        )
        start = time.perf_counter()
        drafts = draft_items(
            source, client, question_types=question_types, max_parallel=len(question_types)
        )
        took = time.perf_counter() - start
        assert len(drafts) == len(question_types) and all(d.ok for d in drafts), drafts
        assert all(d.generator.image == ("sent" if vision else "") for d in drafts), drafts
        return [(took, d.generator.image_bytes) for d in drafts]

    go.wait()
    cpu = time.process_time()
    with ThreadPoolExecutor(max_workers=max(1, concurrency // len(question_types))) as pool:
        results = [r for rs in pool.map(one, pair_ids) for r in rs]
    out.put(("done", (results, time.process_time() - cpu)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="per process")
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--vision", action="store_true", help="vision prompts with crop images")
    parser.add_argument(
        "--types",
        type=int,
        default=4,
        choices=range(1, len(VISION_TYPES) + 1),
        help="with --vision: question types per pair (drafted in parallel, one crop each)",
    )
    args = parser.parse_args()
    types = args.types if args.vision else 1

    from curation.drafting.testing import FakeLLMServer

    with FakeLLMServer(latency=args.latency) as server:
        ids = list(range(args.pairs // types))
        shares = [ids[i :: args.processes] for i in range(args.processes)]
        ctx = mp.get_context("fork")
        out: mp.Queue = ctx.Queue()
        global go
        go = ctx.Event()
        procs = [
            ctx.Process(
                target=_worker,
                args=(server.url, share, args.concurrency, args.vision, types, out),
            )
            for share in shares
        ]
        for p in procs:
            p.start()
        for _ in procs:
            assert out.get()[0] == "ready"
        start, server_cpu = time.perf_counter(), time.process_time()
        go.set()
        done = [out.get()[1] for _ in procs]
        wall = time.perf_counter() - start
        server_cpu = time.process_time() - server_cpu
        results = [r for rs, _ in done for r in rs]
        worker_cpu = sum(c for _, c in done)
        for p in procs:
            p.join()
        peak = server.peak_in_flight
        requests = len(server.requests)
        request_bytes = sum(server.request_bytes) / max(1, requests)
        images_seen = len(server.images)
    durations = [d for d, _ in results]
    image_bytes = sum(b for _, b in results) / max(1, len(results))

    n = len(results)
    total = args.concurrency * args.processes
    ideal = n * args.latency / total
    overhead = sorted(d - args.latency for d in durations)
    target = 1.3 if args.vision else 1.5
    kind = (
        f"vision ({types} types per pair on one 600x450 PNG crop)"
        if args.vision
        else "text (diagnosis)"
    )
    print(f"{n} {kind} drafts, {args.processes} processes x {args.concurrency} in "
          f"flight, server latency {args.latency * 1000:.0f} ms, {requests} requests")  # fmt: skip
    print(f"wall {wall:.2f} s, ideal {ideal:.2f} s, ratio {wall / ideal:.2f} "
          f"(target <= {target})")  # fmt: skip
    print(f"bytes per request {request_bytes / 1024:.1f} KiB; image bytes per draft "
          f"{image_bytes / 1024:.1f} KiB; images decoded by the server {images_seen}")  # fmt: skip
    print(f"drafts/s {n / wall:.1f}; concurrency reached at the server: {peak}")
    cores = len(os.sched_getaffinity(0))
    print(f"CPU per draft: clients {worker_cpu / n * 1000:.1f} ms, fake server "
          f"{server_cpu / n * 1000:.1f} ms; load average {os.getloadavg()[0]:.1f} "
          f"on {cores} cores")  # fmt: skip
    p50, p95 = overhead[len(overhead) // 2], overhead[int(len(overhead) * 0.95)]
    print(
        f"overhead beyond the latency (per pair): p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
