"""End to end: real etcd, the real update server, 20 simulated nodes in 2 lock groups on stable.

A release is published and promoted to stable; every node must end on it with the new partition
booted and marked good, and etcd's own history must show that no lock group ever had more holders
than its max and that no node rebooted without holding the lock.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.fleet.history import check_capacity, check_reboots, holding_intervals, read_lock_history
from coreroll.fleet.scenario import SCENARIOS, Spread
from tests.fleet.helpers import NEW, OLD, rollout_fleet
from tests.node.test_engine_support import admin, publish_synthetic

# update_engine's schedule, shortened so the test's simulated half hour stays short in real time
FAST = Spread(first_check=60, first_check_fuzz=30, interval=300, interval_fuzz=60)


def promote(server: Any, version: str, to: str) -> None:
    with admin(server) as client:
        reply = client.post(f"/api/v1/releases/{version}/promote", json={"to": to})
    assert reply.status_code == 200, reply.text


@pytest.mark.slow
async def test_rollout_of_20_nodes_in_two_lock_groups(
    clean_etcd: str, update_server: Any, tmp_path: Path
) -> None:
    publish_synthetic(update_server, OLD, channel="stable")
    scenario = dataclasses.replace(SCENARIOS["stable"], spread=FAST)
    fleet = rollout_fleet(tmp_path, update_server, EtcdConfig(endpoints=(clean_etcd,)), scenario, 20, seed=7)
    await fleet.start()
    try:
        assert await fleet.wait_for(lambda: fleet.snapshot().up == 20, within=20)
        publish_synthetic(update_server, NEW, channel="alpha")
        promote(update_server, NEW, "beta")
        promote(update_server, NEW, "stable")
        done = await fleet.wait_for(lambda: fleet.all_on(NEW), within=90)
        assert done, fleet.snapshot().line()
        assert await fleet.wait_for(lambda: all(s.released for s in fleet.spans), within=10)
        events = await read_lock_history(fleet.etcd, fleet.start_revision)
    finally:
        await fleet.stop()

    for node in fleet.nodes:
        assert node.agent is not None
        table = {p.label: p for p in node.agent.disk.table()}
        assert node.agent.disk.active.label == "USR-B"
        assert (table["USR-B"].version, table["USR-B"].priority, table["USR-B"].successful) == (NEW, 2, 1)
        assert (table["USR-A"].version, table["USR-A"].priority) == (OLD, 1)

    # one reboot per node, each under the lock of its own group
    assert sorted(r.machine_id for r in fleet.reboots) == sorted(n.machine_id for n in fleet.nodes)
    group_of = {n.machine_id: n.plan.lock_group for n in fleet.nodes}
    assert sorted(group_of.values()).count("web") == 10
    for reboot in fleet.reboots:
        assert reboot.group == group_of[reboot.machine_id]
        assert reboot.machine_id in reboot.holders

    assert check_capacity(events, {"web": 2, "db": 1}) == []
    assert check_reboots(fleet.reboots, events) == []
    # the groups' limits were actually used, not just respected
    most = {
        g: max((len(e.semaphore.holders) for e in events if e.group == g and e.semaphore), default=0)
        for g in ("web", "db")
    }
    assert most == {"web": 2, "db": 1}
    intervals = holding_intervals(events)
    assert set(intervals) == {(r.group, r.machine_id) for r in fleet.reboots}
