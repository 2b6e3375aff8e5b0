"""Drafting throughput against a fake OpenAI-compatible server with 300 ms per request.

    make bench-draft

Drafts one item for each of 1,000 pairs from two worker processes (16 requests in flight each,
32 in all) with the real client, and prints drafts per second, the overhead per draft beyond
the server's latency, and the concurrency the server saw. Ideal: 1,000 x 0.3 s / 32 = 9.4 s.
Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _worker(url: str, pair_ids: list[int], concurrency: int, out: mp.Queue) -> None:
    from curation.drafting import DraftSource, LLMClient, draft_items

    client = LLMClient(base_url=url, model="fake", api_key="k", concurrency=concurrency)

    def one(pair_id: int) -> float:
        source = DraftSource(
            pair_id=pair_id,
            caption=f"Fig. {pair_id} Plaque psoriasis on the elbow of a 40-year-old man.",
            modality="clinical",
            diagnosis="psoriasis",
        )
        start = time.perf_counter()
        drafts = draft_items(source, client, question_types=["diagnosis"])
        assert drafts and drafts[0].ok, drafts
        return time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        durations = list(pool.map(one, pair_ids))
    out.put(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="per process")
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()

    from curation.drafting.testing import FakeLLMServer

    with FakeLLMServer(latency=args.latency) as server:
        ids = list(range(args.pairs))
        shares = [ids[i :: args.processes] for i in range(args.processes)]
        out: mp.Queue = mp.Queue()
        ctx = mp.get_context("fork")
        procs = [
            ctx.Process(target=_worker, args=(server.url, share, args.concurrency, out))
            for share in shares
        ]
        start = time.perf_counter()
        for p in procs:
            p.start()
        durations = [d for _ in procs for d in out.get()]
        for p in procs:
            p.join()
        wall = time.perf_counter() - start
        peak = server.peak_in_flight
        requests = len(server.requests)

    total = args.concurrency * args.processes
    ideal = args.pairs * args.latency / total
    overhead = sorted(d - args.latency for d in durations)
    print(f"{args.pairs} drafts, {args.processes} processes x {args.concurrency} in flight, "
          f"server latency {args.latency * 1000:.0f} ms, {requests} requests")  # fmt: skip
    print(f"wall {wall:.2f} s, ideal {ideal:.2f} s, ratio {wall / ideal:.2f} (target <= 1.5)")
    print(f"drafts/s {args.pairs / wall:.1f}; concurrency reached at the server: {peak}")
    p50, p95 = overhead[len(overhead) // 2], overhead[int(len(overhead) * 0.95)]
    print(f"overhead beyond the latency: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
