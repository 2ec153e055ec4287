"""Reboot-lock contention: how long a contender waits, and round trips per second, for 1/10/100 contenders.

Each contender repeats `lock(group, own id)` then `unlock` for a fixed time against an embedded
etcd; max is set to the number of contenders, so every refusal is a lost compare-and-swap on the one
semaphore key (not a full semaphore). A contender's *wait* is one lock+unlock round trip: from asking
for the lock until it has given it back, both changes queued behind every other contender.

Two ways to contend, both measured:
- `shared`: every contender uses one store (one process, one connection: the fleet simulator, the
  agents bench, a dashboard), the case issue 19 measured;
- `each`: one store and connection per contender, like separate machines.
Two retry loops, measured in the same run on the same etcd:
- `before`: the loop as it was (read, CAS, on a lost race sleep with growing jitter, then retry
  against the value learnt *before* the sleep), reproduced below as `BeforeRetry`;
- `after`: coreroll's `LockStore.update` (turns per key within a store, the last value seen reused,
  immediate retry against the value a failed compare returns).
The floor, also in the same run: two plain writes of the key through one client per round trip.

    .venv/bin/python bench/locks.py [--seconds 3] [--contenders 1,10,100] [--apis v3,v2] [--modes shared,each]

Prints a table and writes bench/results/locks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results_file import write_results
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v2 import V2Client
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import LockConflictError, LockStore, Semaphore, parse_semaphore, semaphore_key
from coreroll.locks.v2store import V2LockStore
from coreroll.locks.v3store import V3LockStore

RESULTS = Path(__file__).resolve().parent / "results" / "locks.json"
T = TypeVar("T")


class CountedCalls(LockStore):
    """Counts the requests the store sends to etcd (reads, creates, compare-and-swaps)."""

    calls = 0

    async def _read(self, key: str) -> tuple[bytes | None, int]:
        self.calls += 1
        return await super()._read(key)

    async def _create(self, key: str, value: bytes) -> bool:
        self.calls += 1
        return await super()._create(key, value)

    async def _cas(
        self, key: str, value: bytes, revision: int
    ) -> tuple[int | None, tuple[bytes | None, int] | None]:
        self.calls += 1
        return await super()._cas(key, value, revision)


class BeforeRetry(LockStore):
    """The retry loop before issue 19 (the baseline): every caller races, backoff grows, stale retries."""

    async def update(self, group: str, change: Callable[[Semaphore], T]) -> tuple[T, Semaphore, int]:
        key = semaphore_key(group)
        deadline = time.monotonic() + self.conflict_deadline
        attempt = 0
        current, revision = await self.get(group)
        while True:
            changed = current.copy()
            result = change(changed)
            new_revision, fresh = await self._cas(key, changed.to_json(), revision)
            if new_revision is not None:
                return result, changed, new_revision
            self.conflicts += 1
            attempt += 1
            if time.monotonic() >= deadline:
                raise LockConflictError(f"gave up on {key} after {attempt} conflicting writes")
            await asyncio.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt)))
            if fresh is not None and fresh[0] is not None:
                current, revision = parse_semaphore(fresh[0], key), fresh[1]
            else:
                current, revision = await self.get(group)


def _store_class(api: str, variant: str) -> type[LockStore]:
    backend: type[LockStore] = V3LockStore if api == "v3" else V2LockStore
    bases = (CountedCalls, BeforeRetry, backend) if variant == "before" else (CountedCalls, backend)
    return type(f"{variant.title()}{backend.__name__}", bases, {})


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def bench_locks(
    endpoint: str, api: str, variant: str, mode: str, contenders: int, seconds: float
) -> dict[str, Any]:
    config = EtcdConfig(endpoints=(endpoint,), api=api, timeout=30.0)
    store_class = _store_class(api, variant)
    stores = [
        store_class(config, conflict_deadline=120.0) for _ in range(1 if mode == "shared" else contenders)
    ]
    group = f"bench-{api}-{variant}-{mode}-{contenders}"
    await stores[0].set_max(group, contenders)
    for store in stores:  # connect before the clock starts
        await store.peek(group)
    waits: list[float] = []
    lock_waits: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def contender(n: int) -> None:
        store = stores[n % len(stores)]
        holder = f"{n:04d}"
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await store.lock(group, holder)
            locked = time.perf_counter()
            await store.unlock(group, holder)
            waits.append(time.perf_counter() - started)
            lock_waits.append(locked - started)

    calls_before = sum(s.calls for s in stores)
    conflicts_before = sum(s.conflicts for s in stores)
    began = time.perf_counter()
    await asyncio.gather(*(contender(n) for n in range(contenders)))
    elapsed = time.perf_counter() - began
    calls = sum(s.calls for s in stores) - calls_before
    conflicts = sum(s.conflicts for s in stores) - conflicts_before
    for store in stores:
        await store.close()
    return {
        "api": api,
        "variant": variant,
        "mode": mode,
        "contenders": contenders,
        "round_trips": len(waits),
        "seconds": round(elapsed, 3),
        "round_trips_per_s": round(len(waits) / elapsed, 1),
        "wait_p50_ms": _ms(statistics.median(waits)),
        "wait_p99_ms": _ms(_p(waits, 0.99)),
        "wait_max_ms": _ms(max(waits)),
        "lock_wait_p50_ms": _ms(statistics.median(lock_waits)),
        "lock_wait_p99_ms": _ms(_p(lock_waits, 0.99)),
        "conflicts_per_round_trip": round(conflicts / max(1, len(waits)), 2),
        "etcd_requests_per_round_trip": round(calls / max(1, len(waits)), 2),
    }


async def bench_floor(endpoint: str, api: str, seconds: float) -> dict[str, Any]:
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
        "wait_p50_ms": _ms(statistics.median(latencies)),
        "wait_p99_ms": _ms(_p(latencies, 0.99)),
    }


def _ratios(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    return {
        "wait_p50": round(after["wait_p50_ms"] / before["wait_p50_ms"], 3),
        "wait_p99": round(after["wait_p99_ms"] / before["wait_p99_ms"], 3),
        "round_trips_per_s": round(after["round_trips_per_s"] / before["round_trips_per_s"], 2),
    }


async def run(seconds: float, contenders: list[int], apis: list[str], modes: list[str]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    floors: dict[str, dict[str, Any]] = {}
    with EmbeddedEtcd() as etcd:
        for api in apis:
            print(f"measuring the {api} floor ({seconds:g}s) ...", file=sys.stderr, flush=True)
            floors[api] = await bench_floor(etcd.endpoint, api, seconds)
            for mode in modes:
                for count in contenders:
                    pair: dict[str, dict[str, Any]] = {}
                    # Alternate the order so neither variant always runs on the warmer etcd.
                    order = ("before", "after") if count % 2 == 0 else ("after", "before")
                    for variant in order:
                        print(
                            f"measuring {api} {mode} {variant} with {count} contenders ({seconds:g}s) ...",
                            file=sys.stderr,
                            flush=True,
                        )
                        pair[variant] = await bench_locks(etcd.endpoint, api, variant, mode, count, seconds)
                    pair["after"]["after_vs_before"] = _ratios(pair["before"], pair["after"])
                    rows += [pair["before"], pair["after"]]
    return {
        "command": "python bench/locks.py " + " ".join(sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "seconds_per_case": seconds,
        "floor": floors,
        "results": rows,
    }


def print_table(report: dict[str, Any]) -> None:
    header = (
        f"{'api':<4} {'mode':<7} {'contenders':>10} {'variant':<8} {'rt/s':>8} {'wait p50 ms':>12} "
        f"{'wait p99 ms':>12} {'conflicts/rt':>13} {'etcd req/rt':>12} {'p99 after/before':>17}"
    )
    print(header)
    print("-" * len(header))
    for api, floor in report["floor"].items():
        print(
            f"{api:<4} {'-':<7} {'floor':>10} {'-':<8} {floor['round_trips_per_s']:>8} "
            f"{floor['wait_p50_ms']:>12} {floor['wait_p99_ms']:>12} {'-':>13} {'2.0':>12} {'-':>17}"
        )
        for row in (r for r in report["results"] if r["api"] == api):
            ratio = row.get("after_vs_before", {}).get("wait_p99", "")
            print(
                f"{api:<4} {row['mode']:<7} {row['contenders']:>10} {row['variant']:<8} "
                f"{row['round_trips_per_s']:>8} {row['wait_p50_ms']:>12} {row['wait_p99_ms']:>12} "
                f"{row['conflicts_per_round_trip']:>13} {row['etcd_requests_per_round_trip']:>12} {ratio!s:>17}"
            )
    load = ", ".join(f"{x:.1f}" for x in report["machine"]["loadavg"])
    print(
        "(wait: one lock+unlock round trip; floor: two plain writes of one key; "
        f"load average during the run: {load})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--contenders", default="1,10,100", help="comma-separated contender counts")
    parser.add_argument("--apis", default="v3,v2", help="etcd APIs to measure: v3, v2 or both")
    parser.add_argument(
        "--modes", default="shared,each", help="shared (one store), each (one store per contender)"
    )
    args = parser.parse_args()
    report = asyncio.run(
        run(
            args.seconds,
            [int(c) for c in args.contenders.split(",")],
            args.apis.split(","),
            args.modes.split(","),
        )
    )
    print_table(report)
    write_results(RESULTS, report, file=sys.stderr)


if __name__ == "__main__":
    main()
