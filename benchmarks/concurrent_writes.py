"""Concurrent writers on SQLite: N clients create a dataset each at once (goal: 0 errors).

Baseline in the same run: the same N creations one after the other from one client, the
time the writes need when nothing competes. Reported: errors, p50/p95 of the concurrent
requests, and the concurrent wall time over the sequential one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import p50, percentile, served, write_result


async def _concurrent(url: str, token: str, n: int, tag: str) -> tuple[list[int], list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as c:

        async def one(i: int) -> tuple[int, float]:
            start = time.perf_counter()
            r = await c.post("/api/v1/datasets", json={"name": f"{tag}-{i}"})
            return r.status_code, (time.perf_counter() - start) * 1000

        results = await asyncio.gather(*(one(i) for i in range(n)))
    return [r[0] for r in results], [r[1] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir, served(Path(tmpdir)) as (url, token):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            start = time.perf_counter()
            for i in range(args.writers):
                assert c.post("/api/v1/datasets", json={"name": f"seq-{i}"}).status_code == 201
            sequential_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        codes, latencies = asyncio.run(_concurrent(url, token, args.writers, "par"))
        concurrent_ms = (time.perf_counter() - start) * 1000
    errors = sum(code != 201 for code in codes)
    result = {
        "writers": args.writers,
        "errors": errors,
        "p50_ms": round(p50(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "concurrent_wall_ms": round(concurrent_ms, 1),
        "sequential_wall_ms": round(sequential_ms, 1),
        "ratio": round(concurrent_ms / sequential_ms, 2),
    }
    path = write_result("concurrent_writes", result)
    print(
        f"concurrent_writes: {args.writers} writers, {errors} errors, p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms; wall {result['concurrent_wall_ms']} ms vs "
        f"{result['sequential_wall_ms']} ms one after the other (x{result['ratio']}) -> {path}"
    )


if __name__ == "__main__":
    main()
