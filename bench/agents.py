"""Node agent benchmark: what one NodeAgent costs in a process that runs many.

    .venv/bin/python bench/agents.py [--nodes 100,400] [--time-factor 600] [--idle 10]
                                     [--out bench/results/agents.json]

For each N (the smallest N is the baseline, measured in the same run): N agents share one aetcd
client, one httpx client, one command router and one lock waiter, as the fleet runs them, against a
real etcd and a real update server in a separate process (so only the agents' CPU is counted).
- idle: `--idle` real seconds of scheduled checks (noupdate) + status reports + alive keepalives
  (report interval 10 s real): CPU seconds per simulated node-hour.
- rollout: a release is published; every node downloads a 64 KiB signed payload, verifies it,
  writes it, reboots (strategy "reboot") and marks the new partition good. CPU milliseconds per
  node for the whole cycle, and the wall time.
- memory: RSS growth per agent.
The ratio column compares each N with the baseline N (1.0 = per-node cost does not grow with N).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from coreroll.etcd.config import EtcdConfig  # noqa: E402
from coreroll.etcd.launcher import EmbeddedEtcd  # noqa: E402
from coreroll.etcd.port import open_kv  # noqa: E402
from coreroll.locks.v3store import V3LockStore  # noqa: E402
from coreroll.node.agent import AgentOptions, NodeAgent, provision_node  # noqa: E402
from coreroll.node.clock import ScaledClock  # noqa: E402
from coreroll.node.commandbus import CommandRouter  # noqa: E402
from coreroll.node.reboot import LockWaiter  # noqa: E402
from coreroll.omaha.payload import load_public_key  # noqa: E402
from coreroll.server.runner import start_server_process  # noqa: E402

ROLLOUT_LIMIT = 600.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_n(
    n: int, factor: float, idle: float, etcd_endpoint: str, work: Path, pool: int = 32
) -> dict[str, Any]:
    server = start_server_process(work / f"server-{n}")
    try:
        admin = httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})
        await admin.post(
            "/api/v1/releases", json={"version": "1.0.0", "synthetic": True, "channel": "stable"}
        )
        key = load_public_key(work / f"server-{n}" / "keys" / "update-payload-key.pub.pem")
        config = EtcdConfig(endpoints=(etcd_endpoint,))
        etcd = await open_kv(config, "v3")
        store = V3LockStore(config, kv=etcd)
        waiter, router = LockWaiter(store), CommandRouter(etcd)
        await router.start()
        clock = ScaledClock(factor)
        rss0 = psutil.Process().memory_info().rss
        agents: list[NodeAgent] = []
        # A small pool: httpcore scans every pooled connection (a poll() each) per request, so 200
        # connections cost ~2.5x the CPU per node of 32 (measured with this script, 200 nodes).
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            for i in range(n):
                state = work / f"n{n}" / f"node-{i:04d}"
                provision_node(
                    state,
                    version="1.0.0",
                    image=b"v1" * 512,
                    server=server.url,
                    strategy="reboot",
                    fsync=False,
                )
                agents.append(
                    NodeAgent(
                        state,
                        etcd,
                        http,
                        clock,
                        public_key=key,
                        lock_store=store,
                        lock_waiter=waiter,
                        router=router,
                        options=AgentOptions(
                            report_interval=10, reboot_duration=60, hostname=f"n{i}", fsync=False
                        ),
                        rng=random.Random(i),
                    )
                )
            for agent in agents:
                await agent.start()
            rss = psutil.Process().memory_info().rss - rss0
            c0, s0 = cpu(), clock.now()
            await asyncio.sleep(idle)
            idle_cpu, idle_sim = cpu() - c0, clock.now() - s0
            checks = sum(len(a.engine.attempts) for a in agents if a.engine)

            await admin.post(
                "/api/v1/releases",
                json={"version": "2.0.0", "synthetic": True, "channel": "stable", "image_size": 65536},
            )
            c1, t1 = cpu(), time.monotonic()
            while sum(a.disk.active.version == "2.0.0" and a.disk.active.successful == 1 for a in agents) < n:
                if time.monotonic() - t1 > ROLLOUT_LIMIT:
                    states = Counter(
                        (a.disk.active.version, a.engine.status if a.engine else None) for a in agents
                    )
                    raise RuntimeError(f"rollout did not finish in {ROLLOUT_LIMIT} s: {states}")
                await asyncio.sleep(0.1)
            rollout_cpu, rollout_wall = cpu() - c1, time.monotonic() - t1
            for agent in agents:
                await agent.stop()
        await router.stop()
        await waiter.stop()
        await etcd.close()
        await admin.aclose()
    finally:
        server.stop()
    node_hours = n * idle_sim / 3600
    return {
        "nodes": n,
        "time_factor": factor,
        "idle_cpu_s": round(idle_cpu, 3),
        "idle_sim_node_hours": round(node_hours, 1),
        "cpu_s_per_sim_node_hour": round(idle_cpu / node_hours, 5),
        "idle_checks": checks,
        "rollout_cpu_ms_per_node": round(rollout_cpu / n * 1000, 2),
        "rollout_wall_s": round(rollout_wall, 2),
        "rss_kib_per_agent": round(rss / n / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="100,400")
    parser.add_argument("--time-factor", type=float, default=600)
    parser.add_argument("--idle", type=float, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "agents.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sizes = [int(x) for x in args.nodes.split(",")]
    results = []
    with EmbeddedEtcd() as etcd, tempfile.TemporaryDirectory(prefix="coreroll-bench-agents-") as tmp:
        for n in sizes:
            print(f"running {n} agents (time factor {args.time_factor:g}) ...", file=sys.stderr, flush=True)
            results.append(asyncio.run(run_n(n, args.time_factor, args.idle, etcd.endpoint, Path(tmp))))
    base = results[0]
    header = f"{'nodes':>6} {'cpu s/sim node-h':>17} {'ratio':>6} {'checks':>7} {'rollout ms/node':>16} {'ratio':>6} {'wall s':>7} {'KiB/agent':>10}"
    print(header)
    for r in results:
        r["idle_ratio_vs_baseline"] = round(r["cpu_s_per_sim_node_hour"] / base["cpu_s_per_sim_node_hour"], 2)
        r["rollout_ratio_vs_baseline"] = round(
            r["rollout_cpu_ms_per_node"] / base["rollout_cpu_ms_per_node"], 2
        )
        print(
            f"{r['nodes']:>6} {r['cpu_s_per_sim_node_hour']:>17.5f} {r['idle_ratio_vs_baseline']:>6.2f} "
            f"{r['idle_checks']:>7} {r['rollout_cpu_ms_per_node']:>16.2f} {r['rollout_ratio_vs_baseline']:>6.2f} "
            f"{r['rollout_wall_s']:>7.2f} {r['rss_kib_per_agent']:>10.1f}"
        )
    write_results(args.out, {"baseline_nodes": base["nodes"], "results": results}, file=sys.stderr)


if __name__ == "__main__":
    main()
