"""The dashboard's etcd source at fleet scale, headless, against a real (embedded) etcd.

    .venv/bin/python bench/watch_etcd.py [--nodes 10000] [--rate 1000] [--duration 10]
                                         [--out bench/results/watch_etcd.json]

Measures what `bench/dashboard.py` leaves out (it feeds the model directly):
- listing: `EtcdSource` connecting, listing every node status at one revision and the model
  applying the snapshot, until the model holds all N rows (median of 3). Baseline in the same run:
  the same paged Range calls without parsing or a model (the floor any etcd client pays).
- load: `--rate` status changes per second for `--duration` seconds, written by this process with
  aetcd; latency from the start of each `put` to the moment the change is in the model
  (source -> UpdateBuffer -> FleetModel.apply_many, drained every 20 ms as a UI tick would):
  p50 / p99 / max; baseline in the same run: `put` -> etcd's acknowledgement. Also the model's own
  apply cost per change, and process CPU (writer included).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from coreroll.etcd.config import EtcdConfig  # noqa: E402
from coreroll.etcd.launcher import EmbeddedEtcd  # noqa: E402
from coreroll.etcd.v3 import connect_v3  # noqa: E402
from coreroll.etcd.v3kv import AetcdKV  # noqa: E402
from coreroll.watch import updates as u  # noqa: E402
from coreroll.watch.etcd_source import EtcdSource  # noqa: E402
from coreroll.watch.model import FleetModel  # noqa: E402
from coreroll.wire.keys import NODES_PREFIX, status_key  # noqa: E402
from coreroll.wire.status import encode_status, sample_document  # noqa: E402

STATUSES = [
    "UPDATE_STATUS_IDLE",
    "UPDATE_STATUS_DOWNLOADING",
    "UPDATE_STATUS_VERIFYING",
    "UPDATE_STATUS_FINALIZING",
]


def status(mid: str, seq: int, state: str, progress: float) -> bytes:
    doc = sample_document(
        mid,
        hostname=f"node-{mid[-5:]}",
        status=state,
        progress=progress,
        new_version="4700.0.1",
        new_size=1048576,
        last_checked_time=1795770000 + seq,
        boot_id=f"boot-{mid}",
        booted_at="2026-11-27T09:00:00.000Z",
        reported_at="2026-11-27T09:30:00.000Z",
    )
    return encode_status(doc)


def mid_of(i: int) -> str:
    return f"{i:032x}"


async def fill(client: Any, nodes: int) -> None:
    sem = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with sem:
            await client.put(status_key(mid_of(i)).encode(), status(mid_of(i), 0, STATUSES[0], 0.0))

    for start in range(0, nodes, 2000):
        await asyncio.gather(*(put(i) for i in range(start, min(nodes, start + 2000))))
        print(f"  wrote {min(nodes, start + 2000)}/{nodes} node statuses", flush=True)


async def listing(config: EtcdConfig, nodes: int) -> float:
    buffer = u.UpdateBuffer()
    model = FleetModel()
    source = EtcdSource(config, buffer.put)
    start = time.perf_counter()
    task = asyncio.create_task(source.run())
    while len(model.rows) < nodes:
        model.apply_many(buffer.drain())
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - start
    source.stop()
    await task
    return elapsed


async def baseline(client: Any) -> float:
    """The same paged Range calls the source makes, without parsing or a model."""
    start = time.perf_counter()
    await AetcdKV(client).get_prefix(NODES_PREFIX)
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(config: EtcdConfig, client: Any, nodes: int, rate: int, duration: float) -> dict[str, Any]:
    sent: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}
    buffer = u.UpdateBuffer()
    model = FleetModel()

    def sink(update: u.Update) -> None:
        buffer.put(update)

    source = EtcdSource(config, sink)
    task = asyncio.create_task(source.run())
    resyncs_before = 0
    while len(model.rows) < nodes:
        model.apply_many(buffer.drain())
        await asyncio.sleep(0.005)
    resyncs_before = source.resyncs
    latencies: list[float] = []
    apply_seconds = 0.0
    applied = 0
    stop = asyncio.Event()
    all_arrived = asyncio.Event()
    total = int(rate * duration)

    async def tick() -> None:
        nonlocal apply_seconds, applied
        while not stop.is_set() or len(buffer):
            batch = buffer.drain()
            t0 = time.perf_counter()
            model.apply_many(batch)
            apply_seconds += time.perf_counter() - t0
            now = time.perf_counter()
            for update in batch:
                # a resync (after the source lost etcd) delivers changes inside a snapshot
                statuses = update.statuses if isinstance(update, u.EtcdSnapshot) else (update,)
                for status in statuses:
                    if isinstance(status, u.NodeStatus):
                        applied += 1
                        if status.raw in sent and status.raw not in arrived:
                            arrived[status.raw] = now
                            latencies.append(now - sent[status.raw])
            if len(arrived) >= total:
                all_arrived.set()
            await asyncio.sleep(0.02)

    ticker = asyncio.create_task(tick())
    proc = psutil.Process()
    cpu0 = sum(proc.cpu_times()[:2])
    wall0 = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    acked: list[float] = []  # put -> etcd's acknowledgement: the baseline for the latency
    for seq in range(1, total + 1):
        target = wall0 + seq / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i = (seq * 7919) % nodes
        raw = status(mid_of(i), seq, STATUSES[seq % len(STATUSES)], (seq % 100) / 100)
        sent[raw] = time.perf_counter()
        put = asyncio.create_task(client.put(status_key(mid_of(i)).encode(), raw))
        pending.add(put)
        put.add_done_callback(pending.discard)
        put.add_done_callback(lambda _t, raw=raw: acked.append(time.perf_counter() - sent[raw]))
    await asyncio.gather(*pending)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_arrived.wait(), 30)
    wall = time.perf_counter() - wall0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    stop.set()
    await ticker
    source.stop()
    await task
    return {
        "load_average_1m": round(psutil.getloadavg()[0], 2),
        "changes": total,
        "resyncs_during_load": source.resyncs - resyncs_before,
        "delivered": len(latencies),
        "latency_p50_ms": round(pct(latencies, 0.50) * 1000, 2),
        "latency_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "latency_max_ms": round(max(latencies) * 1000, 2),
        "baseline_put_ack_p50_ms": round(pct(acked, 0.50) * 1000, 2),
        "baseline_put_ack_p99_ms": round(pct(acked, 0.99) * 1000, 2),
        "model_apply_us_per_change": round(apply_seconds / max(applied, 1) * 1e6, 1),
        "cpu_cores": round(cpu / wall, 2),
        "rss_mb": round(proc.memory_info().rss / 2**20, 1),
    }


async def measure() -> tuple[argparse.Namespace, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "watch_etcd.json"))
    args = parser.parse_args()
    with EmbeddedEtcd() as etcd:
        config = EtcdConfig(endpoints=(etcd.endpoint,))
        client = await connect_v3(config)
        print(f"filling etcd at {etcd.endpoint} with {args.nodes} node statuses", flush=True)
        await fill(client, args.nodes)
        print("measuring listing (3 runs each)", flush=True)
        base = statistics.median([await baseline(client) for _ in range(3)])
        ours = statistics.median([await listing(config, args.nodes) for _ in range(3)])
        print(f"load: {args.rate} changes/s for {args.duration:.0f} s", flush=True)
        loaded = await load(config, client, args.nodes, args.rate, args.duration)
        await client.close()
    result = {
        "nodes": args.nodes,
        "rate": args.rate,
        "duration_s": args.duration,
        "listing_s_median": round(ours, 3),
        "baseline_range_s_median": round(base, 3),
        "listing_vs_baseline": round(ours / base, 2) if base else None,
        **loaded,
    }
    return args, result


def main() -> None:
    args, result = asyncio.run(measure())
    rows = [
        ("nodes", result["nodes"]),
        ("listing into the model (median of 3)", f"{result['listing_s_median']} s"),
        ("baseline: paged Range only (median of 3)", f"{result['baseline_range_s_median']} s"),
        ("ratio listing / baseline", result["listing_vs_baseline"]),
        ("changes written / delivered", f"{result['changes']} / {result['delivered']}"),
        ("resyncs during the load", result["resyncs_during_load"]),
        ("put -> in the model p50", f"{result['latency_p50_ms']} ms"),
        ("put -> in the model p99", f"{result['latency_p99_ms']} ms"),
        ("put -> in the model max", f"{result['latency_max_ms']} ms"),
        ("baseline: put -> etcd ack p50", f"{result['baseline_put_ack_p50_ms']} ms"),
        ("baseline: put -> etcd ack p99", f"{result['baseline_put_ack_p99_ms']} ms"),
        ("model apply per change", f"{result['model_apply_us_per_change']} us"),
        ("process CPU (writer included)", f"{result['cpu_cores']} cores"),
        ("RSS", f"{result['rss_mb']} MB"),
        ("machine load average (1 min)", result["load_average_1m"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    write_results(args.out, result)


if __name__ == "__main__":
    main()
