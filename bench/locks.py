"""Reboot-lock throughput: lock+unlock round trips per second under 1, 10 and 100 contenders.

Each contender repeats `lock(group, own id)` then `unlock` for a fixed time against an embedded
etcd; max is set to the number of contenders, so every refusal is a lost compare-and-swap on the one
semaphore key (not a full semaphore). The baseline, measured in the same run, is two plain writes of
the same key through the same client (what a round trip would cost with no read and no CAS).

    .venv/bin/python bench/locks.py [--seconds 3] [--contenders 1,10,100]

Prints a table and writes bench/results/locks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results_file import write_results
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v2 import V2Client
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import open_lock_store

RESULTS = Path(__file__).resolve().parent / "results" / "locks.json"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_locks(endpoint: str, api: str, contenders: int, seconds: float) -> dict[str, Any]:
    config = EtcdConfig(endpoints=(endpoint,), api=api, timeout=30.0)
    store = open_lock_store(config, conflict_deadline=120.0)
    group = f"bench-{api}-{contenders}"
    await store.set_max(group, contenders)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def contender(n: int) -> None:
        holder = f"{n:04d}"
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await store.lock(group, holder)
            await store.unlock(group, holder)
            latencies.append(time.perf_counter() - started)

    conflicts_before = store.conflicts
    began = time.perf_counter()
    await asyncio.gather(*(contender(n) for n in range(contenders)))
    elapsed = time.perf_counter() - began
    await store.close()
    return {
        "api": api,
        "contenders": contenders,
        "round_trips": len(latencies),
        "seconds": round(elapsed, 3),
        "round_trips_per_s": round(len(latencies) / elapsed, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(_p(latencies, 0.99) * 1000, 2),
        "conflicts_per_round_trip": round((store.conflicts - conflicts_before) / max(1, len(latencies)), 2),
    }


async def bench_baseline(endpoint: str, api: str, seconds: float) -> dict[str, Any]:
    """Two unconditional writes of one key per round trip, one writer: the floor for a lock+unlock."""
    config = EtcdConfig(endpoints=(endpoint,), api=api)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    if api == "v3":
        client = await connect_v3(config)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await client.put(b"bench/baseline", b"1")
                await client.put(b"bench/baseline", b"2")
                latencies.append(time.perf_counter() - started)
        finally:
            await client.close()
    else:
        async with V2Client(config) as v2:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                await v2.put("/bench/baseline", "1")
                await v2.put("/bench/baseline", "2")
                latencies.append(time.perf_counter() - started)
    return {
        "api": api,
        "round_trips": len(latencies),
        "round_trips_per_s": round(len(latencies) / seconds, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(_p(latencies, 0.99) * 1000, 2),
    }


async def run(seconds: float, contenders: list[int]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, Any]] = {}
    with EmbeddedEtcd() as etcd:
        for api in ("v3", "v2"):
            print(f"measuring {api} baseline ({seconds:.0f}s) ...", file=sys.stderr, flush=True)
            baselines[api] = await bench_baseline(etcd.endpoint, api, seconds)
            for count in contenders:
                print(
                    f"measuring {api} with {count} contenders ({seconds:.0f}s) ...",
                    file=sys.stderr,
                    flush=True,
                )
                row = await bench_locks(etcd.endpoint, api, count, seconds)
                row["median_vs_baseline"] = round(row["median_ms"] / baselines[api]["median_ms"], 2)
                rows.append(row)
    return {
        "command": "python bench/locks.py " + " ".join(sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "seconds_per_case": seconds,
        "baseline": baselines,
        "results": rows,
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'api':<4} {'contenders':>10} {'rt/s':>8} {'median ms':>10} {'p99 ms':>9} {'conflicts/rt':>13} {'median/base':>12}"
    print(header)
    print("-" * len(header))
    for api, base in report["baseline"].items():
        print(
            f"{api:<4} {'baseline':>10} {base['round_trips_per_s']:>8} {base['median_ms']:>10} {base['p99_ms']:>9} "
            f"{'-':>13} {'1.00':>12}"
        )
        for row in (r for r in report["results"] if r["api"] == api):
            print(
                f"{api:<4} {row['contenders']:>10} {row['round_trips_per_s']:>8} {row['median_ms']:>10} "
                f"{row['p99_ms']:>9} {row['conflicts_per_round_trip']:>13} {row['median_vs_baseline']:>12}"
            )
    load = ", ".join(f"{x:.1f}" for x in report["machine"]["loadavg"])
    print(f"(baseline: two plain writes of one key; load average during the run: {load})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--contenders", default="1,10,100", help="comma-separated contender counts")
    args = parser.parse_args()
    report = asyncio.run(run(args.seconds, [int(c) for c in args.contenders.split(",")]))
    print_table(report)
    write_results(RESULTS, report, file=sys.stderr)


if __name__ == "__main__":
    main()
