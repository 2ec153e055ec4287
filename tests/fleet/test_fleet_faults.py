"""The fleet's fault injection, end to end against real etcd and the real server.

Ten nodes; one each: the new release does not boot, it crashes mid-download, it crashes
mid-reboot (holding the lock), its first payload arrives with a flipped byte; and etcd, later the
update server, are unreachable for two simulated minutes in the middle of the rollout.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.fleet.history import check_capacity, check_reboots, read_lock_history
from coreroll.fleet.scenario import SCENARIOS, Faults, Spread
from tests.fleet.helpers import NEW, OLD, rollout_fleet
from tests.node.test_engine_support import admin, publish_synthetic

FAST = Spread(first_check=60, first_check_fuzz=30, interval=300, interval_fuzz=60, failed_boot_timeout=120)
FAULTS = Faults(
    boot_failure=0.1,
    die_downloading=0.1,
    die_rebooting=0.1,
    corrupt_payload=0.1,
    down_for=60,
    etcd_outage=(150, 120),
    server_outage=(420, 120),
)


def history(server: Any, machine_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server.url}/api/v1/instances/{machine_id}/history", params={"limit": 100}, timeout=10
    )
    reply.raise_for_status()
    return list(reply.json()["history"])


@pytest.mark.slow
async def test_faults_during_a_rollout(clean_etcd: str, update_server: Any, tmp_path: Path) -> None:
    publish_synthetic(update_server, NEW, channel="stable")
    # The server runs on real time: a failed or abandoned update is offered again after the group's
    # update timeout, here 3 real seconds (5 simulated minutes) instead of an hour.
    with admin(update_server) as client:
        reply = client.put("/api/v1/groups/stable/policy", json={"update_timeout_seconds": 3})
    assert reply.status_code == 200, reply.text
    scenario = dataclasses.replace(SCENARIOS["stable"], spread=FAST, faults=FAULTS)
    fleet = rollout_fleet(
        tmp_path, update_server, EtcdConfig(endpoints=(clean_etcd,), timeout=2.0), scenario, 10, seed=3
    )
    by_fault = {}
    await fleet.start()
    try:
        for field in ("boot_fails", "die_downloading", "die_rebooting", "corrupt_payload"):
            [node] = [n for n in fleet.nodes if getattr(n.plan, field)]
            by_fault[field] = node
        healthy = [n for n in fleet.nodes if n is not by_fault["boot_fails"]]

        def settled() -> bool:
            broken = by_fault["boot_fails"]
            return (
                all(n.is_good_on(NEW) for n in healthy)
                and broken.agent is not None
                and broken.agent.disk.rolled_back()
                and fleet.faults_fired["server_outage"] == 1
            )

        assert await fleet.wait_for(settled, within=60), fleet.snapshot().line()
        assert await fleet.wait_for(
            lambda: all(s.released for s in fleet.spans if s.machine_id != by_fault["boot_fails"].machine_id),
            within=20,
        )
        events = await read_lock_history(fleet.etcd, fleet.start_revision)
    finally:
        await fleet.stop()

    fired = fleet.faults_fired
    assert fired["etcd_outage"] == 1 and fired["server_outage"] == 1
    assert fired["die_downloading"] == 1 and fired["die_rebooting"] == 1
    assert fired["boot_failure"] >= 1

    # the broken release fell back to the old partition by itself and said so (3/0 errorcode 44)
    broken = by_fault["boot_fails"]
    assert broken.agent is not None and broken.agent.disk.active.version == OLD
    assert any(h["errorcode"] == 44 for h in history(update_server, broken.machine_id))
    # the corrupted payload was refused (3/0 errorcode 10) and the next attempt installed the release
    corrupt = history(update_server, by_fault["corrupt_payload"].machine_id)
    assert any(h["event"] == "3/0" and h["errorcode"] == 10 for h in corrupt)
    # the two crashed nodes came back and finished; the one that died rebooting held its lock through it
    assert by_fault["die_downloading"].crashes == 1 and by_fault["die_rebooting"].crashes == 1
    died = by_fault["die_rebooting"].machine_id
    [span] = [s for s in fleet.spans if s.machine_id == died]
    assert span.released is not None and span.released - span.acquired >= FAULTS.down_for

    # through it all: never more holders than the max, never a reboot without the lock
    assert check_capacity(events, {"web": 2, "db": 1}) == []
    assert check_reboots(fleet.reboots, events) == []
    assert all(r.machine_id in r.holders for r in fleet.reboots)
