"""The update server SIGKILLed during a burst of checks and events while a fleet is updating, then
started again on the same port and database: every request it had acknowledged (HTTP 200) is in
the instance history afterwards, the burst clients and the agents retry until they get through,
and the rollout completes on every node. The dashboard's feed source shows the server down, then
resumes and ends with the server's final statuses."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from coreroll.watch.views import CONNECTED, DOWN
from tests.faults.conftest import (
    NEW,
    OLD,
    ServerProc,
    check,
    check_lock_invariants,
    make_fleet,
    record,
    until,
    watching,
)
from tests.node.test_engine_support import admin, publish_synthetic
from tests.server.helpers import event_xml, request_xml

pytestmark = pytest.mark.slow

NODES = 5
BURST = 30  # synthetic machines hammering the server next to the fleet
# Each burst machine: check (granted), 13/1, 14/1, 3/1 -> the status the server records for it.
STEPS = ["UpdateGranted", "Downloading", "Downloaded", "Installed"]


def step_body(machine: str, step: int) -> bytes:
    if step == 0:
        return request_xml(machine, OLD)
    return event_xml(machine, OLD, (13, 14, 3)[step - 1], 1)


async def burst_client(http: httpx.AsyncClient, url: str, machine: str, acked: list[tuple[str, int]]) -> None:
    """Walk the steps; retry a step (with backoff) until the server acknowledges it."""
    for step in range(len(STEPS)):
        delay = 0.05
        while True:
            try:
                reply = await http.post(f"{url}/v1/update/", content=step_body(machine, step))
                if reply.status_code == 200:
                    acked.append((machine, step))
                    break
            except httpx.HTTPError:
                record("burst_requests_failed_by_the_kill")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


async def test_server_sigkill_during_a_burst(
    clean_etcd: str, server_proc: ServerProc, tmp_path: Path
) -> None:
    publish_synthetic(server_proc, NEW, channel="stable", image_size=64 * 1024)
    with admin(server_proc) as client:
        assert (
            client.put("/api/v1/groups/stable/policy", json={"update_timeout_seconds": 3}).status_code == 200
        )
    fleet = make_fleet(tmp_path, server_proc, clean_etcd, NODES)
    acked: list[tuple[str, int]] = []
    machines = [f"burst{i:027d}" for i in range(BURST)]
    async with (
        httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=8)) as http,
        watching(clean_etcd, server_proc.url) as watch,
    ):
        await fleet.start()
        clients = [asyncio.create_task(burst_client(http, server_proc.url, m, acked)) for m in machines]
        try:
            await until(lambda: len(acked) >= BURST, 30, "a quarter of the burst acknowledged")
            acked_before_kill = list(acked)
            assert not fleet.all_on(NEW), "the rollout finished before the kill"
            await watch.until(lambda m: m.connections["server"].status == CONNECTED, 10, "feed connected")
            server_proc.kill()
            record("server_sigkills")
            await watch.until(
                lambda m: m.connections["server"].status == DOWN, 10, "dashboard shows server down"
            )
            record("burst_requests_acked_before_kill", len(acked_before_kill))
            # down for 60 simulated seconds: agents' checks and downloads fail meanwhile
            killed_at = fleet.clock.now()
            await until(lambda: fleet.clock.now() - killed_at >= 60, 10, "60 simulated seconds")
            await asyncio.to_thread(server_proc.start)
            await watch.until(lambda m: m.connections["server"].status == CONNECTED, 15, "feed reconnects")

            await until(lambda: all(t.done() for t in clients), 60, "every burst client through")
            for task in clients:
                task.result()  # a client that crashed would say so here
            await until(lambda: fleet.all_on(NEW), 90, f"every node on {NEW}: {fleet.snapshot().line()}")
            await until(lambda: all(s.released is not None for s in fleet.spans), 20, "locks released")
            await check_lock_invariants(fleet, {"web": 2, "db": 1})
            # the dashboard's feed, resumed across the kill, ends with the server's final word
            nodes = {n.machine_id for n in fleet.nodes}
            await watch.until(
                lambda m: all((r := m.get(x)) is not None and r.server_status == "Complete" for x in nodes)
                and all((r := m.get(x)) is not None and r.server_status == "Installed" for x in machines),
                20, "dashboard shows the server's final statuses",
            )  # fmt: skip
            check("dashboard_recovered_after_server_restart", [])
        finally:
            for task in clients:
                task.cancel()
            for task in clients:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await fleet.stop()

        # nothing acknowledged is missing: every acked step is in the machine's history
        lost = []
        for machine in machines:
            reply = await http.get(
                f"{server_proc.url}/api/v1/instances/{machine}/history", params={"limit": 100}
            )
            statuses = {h["status"] for h in reply.json()["history"]}
            lost += [
                f"{m} step {STEPS[s]}"
                for m, s in acked_before_kill
                if m == machine and STEPS[s] not in statuses
            ]
            record("burst_steps_verified", sum(1 for m, _ in acked if m == machine))
        assert check("nothing_acknowledged_lost", lost) == []
        instances = (await http.get(f"{server_proc.url}/api/v1/instances", params={"limit": 1000})).json()
        by_id = {i["machine_id"]: i for i in instances["instances"]}
        assert check("burst_ends_installed", [m for m in machines if by_id[m]["status"] != "Installed"]) == []
        # the server agrees with the fleet: every node reported completion
        nodes = [n.machine_id for n in fleet.nodes]
        assert check("fleet_complete_on_server", [
            f"{m}: {by_id[m]['status']} {by_id[m]['version']}" for m in nodes
            if by_id[m]["status"] != "Complete" or by_id[m]["version"] != NEW
        ]) == []  # fmt: skip
    assert server_proc.starts == 2
