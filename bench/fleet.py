"""Fleet benchmark: a full rollout through 1,000 simulated nodes in one process.

    .venv/bin/python bench/fleet.py [--nodes 100,1000] [--time-factor 25] [--out bench/results/fleet.json]

For each N (the first N is the baseline, measured in the same run): a real etcd and a real update
server, each in its own process (so the process CPU counted here is the fleet's alone), N node
agents of the `bench` scenario (4 lock groups of max 5, strategy etcd-lock, update_engine's check
schedule, 45-75 s reboots, per-node download speeds). A release is published and promoted
alpha -> beta -> stable. The lock groups start at max 0 (an operator's `locksmithctl set-max 0`)
and are opened (set-max 5) once every node has the update staged (UPDATED_NEED_REBOOT), so the
reboot phase measures the lock hand-offs rather than how fast the server hands out downloads.
The run ends when every node has booted the release, marked it good and released its lock.

Reported per N:
- cores: process CPU seconds / wall seconds over the whole rollout (target: < 1 core at N = 1,000);
- cpu_s_per_node_hour: CPU seconds per simulated node-hour (N x simulated hours of the rollout);
- makespan: from opening the groups to the last lock release, simulated seconds;
- ideal: max over lock groups of (nodes in group / group max x mean reboot time), the reboot time
  being each node's lock hold (lock, reboot, boot, release: what a slot costs); ratio =
  makespan / ideal (target: <= 1.15). `ideal_nominal`/`ratio_nominal` use the configured reboot
  durations alone (no etcd or scheduling latency, which the time factor magnifies);
- safety from etcd's history: lock-capacity violations and reboots without the lock (must be 0);
- RSS growth per node.
The `vs baseline` column divides each N's per-node-hour CPU by the baseline's (1.0 = flat).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from coreroll.etcd.config import EtcdConfig  # noqa: E402
from coreroll.etcd.launcher import EmbeddedEtcd  # noqa: E402
from coreroll.fleet.history import check_capacity, check_reboots, read_lock_history  # noqa: E402
from coreroll.fleet.scenario import SCENARIOS, LockGroupSpec  # noqa: E402
from coreroll.fleet.sim import Fleet  # noqa: E402
from coreroll.node.clock import ScaledClock  # noqa: E402
from coreroll.omaha.payload import load_public_key  # noqa: E402
from coreroll.server.runner import start_server_process  # noqa: E402

OLD, NEW = "4000.0.0", "4100.0.0"
NEED_REBOOT = "UPDATE_STATUS_UPDATED_NEED_REBOOT"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def makespan_and_ideal(fleet: Fleet, opened: float, maxes: dict[str, int]) -> dict[str, float]:
    spans = [s for s in fleet.spans if s.released is not None]
    start = opened
    end = max(s.released for s in spans if s.released is not None)
    holds: dict[str, list[float]] = defaultdict(list)
    for span in spans:
        assert span.released is not None
        holds[span.group].append(span.released - span.acquired)
    members: dict[str, int] = defaultdict(int)
    nominal: dict[str, list[float]] = defaultdict(list)
    for node in fleet.nodes:
        members[node.plan.lock_group] += 1
        nominal[node.plan.lock_group].append(node.plan.reboot_duration)
    ideal = max(members[g] / maxes[g] * statistics.mean(holds[g]) for g in members)
    ideal_nominal = max(members[g] / maxes[g] * statistics.mean(nominal[g]) for g in members)
    return {
        "makespan_s": end - start,
        "ideal_s": ideal,
        "ideal_nominal_s": ideal_nominal,
        "ratio": (end - start) / ideal,
        "ratio_nominal": (end - start) / ideal_nominal,
        "mean_hold_s": statistics.mean(h for group in holds.values() for h in group),
    }


async def _wait_until(
    done: Callable[[], bool], fleet: Fleet, *, deadline: float, last: float, label: str, failure: str
) -> float:
    """Poll `done` every 0.25 s, printing the fleet's progress line at most every 5 s (`last`: when
    it was printed last; the new value is returned); RuntimeError once `deadline` (monotonic) passed."""
    while not done():
        await asyncio.sleep(0.25)
        if time.monotonic() - last > 5:
            last = time.monotonic()
            print(f"{label}{fleet.snapshot().line()}", file=sys.stderr, flush=True)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{failure}: {fleet.snapshot().line()}")
    return last


async def run_rollout(n: int, factor: float, etcd_endpoint: str, work: Path, limit: float) -> dict[str, Any]:
    server = start_server_process(work / f"server-{n}")
    # No keep-alive: uvicorn closes an idle connection after 5 s, and starting 1,000 nodes takes longer.
    admin = httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    try:
        reply = await admin.post(
            "/api/v1/releases", json={"version": OLD, "synthetic": True, "channel": "stable"}
        )
        reply.raise_for_status()
        key = load_public_key(work / f"server-{n}" / "keys" / "update-payload-key.pub.pem")
        clock = ScaledClock(factor)
        bench = SCENARIOS["bench"]
        # The reboot phase is gated the way an operator pauses reboots: every group starts at max 0
        # (`locksmithctl set-max 0`) and is opened once every node has the update staged, so the
        # makespan measures the lock hand-offs, not how fast the server hands out downloads.
        gated = replace(
            bench, lock_groups=tuple(LockGroupSpec(g.name, 0, g.weight) for g in bench.lock_groups)
        )
        fleet = Fleet(
            work / f"fleet-{n}",
            server.url,
            EtcdConfig(endpoints=(etcd_endpoint,)),
            gated,
            n,
            clock,
            version=OLD,
            image=b"installed image " * 256,
            public_key=key,
            seed=n,
        )
        rss0 = psutil.Process().memory_info().rss
        print(f"[{n}] starting {n} nodes at x{factor:g} ...", file=sys.stderr, flush=True)
        await fleet.start()
        reply = await admin.post(
            "/api/v1/releases", json={"version": NEW, "synthetic": True, "channel": "alpha"}
        )
        reply.raise_for_status()
        for channel in ("beta", "stable"):
            (await admin.post(f"/api/v1/releases/{NEW}/promote", json={"to": channel})).raise_for_status()
        cpu0, wall0, sim0 = cpu(), time.monotonic(), clock.now()
        last = 0.0
        staged = time.monotonic()
        last = await _wait_until(
            lambda: all(
                node.agent is not None
                and node.agent.engine is not None
                and node.agent.engine.snapshot.status == NEED_REBOOT
                for node in fleet.nodes
            ),
            fleet,
            deadline=wall0 + limit,
            last=last,
            label=f"[{n}] staging: ",
            failure=f"{n} nodes did not stage the update",
        )
        staged = time.monotonic()
        assert fleet.lock_store is not None
        opened = clock.now()
        for spec in bench.lock_groups:
            await fleet.lock_store.set_max(spec.name, spec.max)
        print(
            f"[{n}] all staged after {staged - wall0:.1f}s; reboot locks opened", file=sys.stderr, flush=True
        )
        await _wait_until(
            lambda: fleet.all_on(NEW) and all(s.released for s in fleet.spans),
            fleet,
            deadline=wall0 + limit,
            last=last,
            label=f"[{n}] ",
            failure=f"rollout of {n} nodes did not finish",
        )
        cpu1, wall1, sim1 = cpu(), time.monotonic(), clock.now()
        rss1 = psutil.Process().memory_info().rss
        events = await read_lock_history(fleet.etcd, fleet.start_revision, within=120)
        capacity = check_capacity(events, bench.group_max())
        unlocked = check_reboots(fleet.reboots, events)
        conflicts = fleet.lock_store.conflicts if fleet.lock_store else 0
        await fleet.stop()
    finally:
        await admin.aclose()
        server.stop()
    cpu_s, wall_s, sim_s = cpu1 - cpu0, wall1 - wall0, sim1 - sim0
    result: dict[str, Any] = {
        "nodes": n,
        "time_factor": factor,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "cores": cpu_s / wall_s,
        "sim_s": sim_s,
        "cpu_s_per_node_hour": cpu_s / (n * sim_s / 3600),
        "rss_per_node_kib": (rss1 - rss0) / n / 1024,
        "reboots": len(fleet.reboots),
        "lock_cas_conflicts": conflicts,
        "capacity_violations": len(capacity),
        "reboots_without_lock": len(unlocked),
        "lock_history_events": len(events),
    }
    result["staging_wall_s"] = staged - wall0
    result.update(makespan_and_ideal(fleet, opened, bench.group_max()))
    return result


def print_table(rows: list[dict[str, Any]]) -> None:
    base = rows[0]["cpu_s_per_node_hour"]
    header = (
        f"{'nodes':>6} {'wall s':>7} {'cores':>6} {'cpu s/node-h':>13} {'vs baseline':>11} "
        f"{'makespan s':>11} {'ideal s':>8} {'ratio':>6} {'hold s':>7} {'viol':>5} {'rss KiB/node':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['nodes']:>6} {r['wall_s']:>7.1f} {r['cores']:>6.2f} {r['cpu_s_per_node_hour']:>13.3f} "
            f"{r['cpu_s_per_node_hour'] / base:>11.2f} {r['makespan_s']:>11.0f} {r['ideal_s']:>8.0f} "
            f"{r['ratio']:>6.3f} {r['mean_hold_s']:>7.1f} "
            f"{r['capacity_violations'] + r['reboots_without_lock']:>5} {r['rss_per_node_kib']:>12.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--nodes", default="100,1000", help="comma-separated node counts; the first is the baseline"
    )
    parser.add_argument("--time-factor", type=float, default=25.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="real seconds allowed per rollout")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "fleet.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    counts = [int(x) for x in args.nodes.split(",") if x.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="coreroll-bench-fleet-") as tmp, EmbeddedEtcd() as etcd:
        for n in counts:
            rows.append(asyncio.run(run_rollout(n, args.time_factor, etcd.endpoint, Path(tmp), args.timeout)))
    print_table(rows)
    largest = rows[-1]
    targets = {
        "cores_under_1": largest["cores"] < 1.0,
        "makespan_within_15pct": largest["ratio"] <= 1.15,
        "no_safety_violations": all(r["capacity_violations"] + r["reboots_without_lock"] == 0 for r in rows),
    }
    print("targets:", ", ".join(f"{k}={'ok' if v else 'MISSED'}" for k, v in targets.items()))
    write_results(args.out, {"runs": rows, "targets": targets, "baseline_nodes": counts[0]})
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
