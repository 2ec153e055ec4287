"""etcd SIGKILLed and restarted (same data dir, same port) twice in the middle of a rollout: the
agents carry on and every node ends on the new release; the dashboard's etcd source goes `down`,
comes back `connected` and shows the finished fleet; etcd's own history proves no lock group ever
had more holders than its max and no node rebooted without holding its lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.watch.views import CONNECTED, DOWN
from tests.faults.conftest import NEW, check, check_lock_invariants, make_fleet, record, until, watching
from tests.node.test_engine_support import admin, publish_synthetic

pytestmark = pytest.mark.slow

NODES = 6
MAX = {"web": 2, "db": 1}


async def test_etcd_killed_twice_mid_rollout(
    own_etcd: EmbeddedEtcd, update_server: Any, tmp_path: Path
) -> None:
    publish_synthetic(update_server, NEW, channel="stable", image_size=64 * 1024)
    with admin(update_server) as client:  # an abandoned update is offered again after 3 real seconds
        assert (
            client.put("/api/v1/groups/stable/policy", json={"update_timeout_seconds": 3}).status_code == 200
        )
    fleet = make_fleet(tmp_path, update_server, own_etcd.endpoint, NODES)
    async with watching(own_etcd.endpoint) as watch:
        await fleet.start()
        try:
            await watch.until(lambda m: len(m.rows) == NODES, 15, "every node in the dashboard")
            outages = 0
            # first kill: while updates are being granted/downloaded; second: once reboots have begun
            for moment, reached in (
                ("rollout started", lambda: any(n.agent and n.agent.engine and
                                                n.agent.engine.snapshot.status != "UPDATE_STATUS_IDLE"
                                                for n in fleet.nodes)),
                ("first reboot done", lambda: len(fleet.reboots) >= 1),
            ):  # fmt: skip
                await until(reached, 40, moment)
                assert not fleet.all_on(NEW), f"the rollout finished before the fault at '{moment}'"
                own_etcd.kill()
                outages += 1
                record("etcd_sigkills")
                await watch.until(
                    lambda m: m.connections["etcd"].status == DOWN, 10, "dashboard shows etcd down"
                )
                killed_at = fleet.clock.now()
                # stay down for 30 simulated seconds: longer than a node's report interval and lock retry
                await until(lambda t=killed_at: fleet.clock.now() - t >= 30, 10, "30 simulated seconds")
                own_etcd.start()
                await watch.until(
                    lambda m: m.connections["etcd"].status == CONNECTED, 15, "dashboard reconnects"
                )

            assert outages == 2
            await until(lambda: fleet.all_on(NEW), 60, f"every node on {NEW}: {fleet.snapshot().line()}")
            await until(lambda: all(s.released is not None for s in fleet.spans), 20, "every lock released")
            # the dashboard, through both outages, ends with the truth
            await watch.until(
                lambda m: (
                    all(r.version == NEW and r.online for r in m.rows.values())
                    and not any(h for g in m.lock_groups() for h in g.holders)
                ),
                20,
                "dashboard shows every node on the new release and no holder",
            )
            problems = [r.machine_id for r in watch.model.rows.values() if r.version != NEW]
            check("dashboard_recovered_after_etcd_restart", problems)
            await check_lock_invariants(fleet, MAX)
            assert len(fleet.reboots) >= NODES
        finally:
            await fleet.stop()
