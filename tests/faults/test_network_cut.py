"""One node cut off from etcd (its own TCP proxy refuses and resets its connections) for longer than
its alive lease: the dashboard's model shows it offline while the rest stay online, then online
again once the network is back, with fresh status reports. The node keeps running meanwhile."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.etcd.v3kv import AetcdKV
from coreroll.node.agent import AgentOptions, NodeAgent, provision_node
from coreroll.node.clock import ScaledClock
from coreroll.node.faultproxy import FaultProxy
from tests.faults.conftest import FAST, OLD, Watch, check, record, watching

pytestmark = pytest.mark.slow

REPORT = 0.4  # real seconds between reports; the alive lease lives 3x this (rounded, at least 2 s)


async def start_node(
    base: Path, name: str, endpoint: str, server_url: str, http: httpx.AsyncClient
) -> NodeAgent:
    state = base / name
    provision_node(
        state, version=OLD, image=b"image " + OLD.encode(), server=server_url, lock_group="web", fsync=False
    )
    client = await connect_v3(EtcdConfig(endpoints=(endpoint,), timeout=1.0))
    agent = NodeAgent(
        state, AetcdKV(client, own=True), http, ScaledClock(50),
        options=AgentOptions(report_interval=REPORT, timings=FAST.timings(), hostname=name, fsync=False),
        etcd_config=EtcdConfig(endpoints=(endpoint,), timeout=1.0), rng=random.Random(name),
    )  # fmt: skip
    await agent.start()
    return agent


def online(watch: Watch, machine_id: str) -> bool | None:
    row = watch.pump().get(machine_id)
    return row.online if row is not None else None


async def test_node_cut_from_etcd_longer_than_its_lease(
    clean_etcd: str, update_server: Any, tmp_path: Path
) -> None:
    parts = urlsplit(clean_etcd)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 2379)
    via_proxy = await proxy.start()
    agents: list[NodeAgent] = []
    async with httpx.AsyncClient(timeout=10) as http, watching(clean_etcd) as watch:
        try:
            cut_node = await start_node(tmp_path, "cut", via_proxy, update_server.url, http)
            steady = await start_node(tmp_path, "steady", clean_etcd, update_server.url, http)
            agents += [cut_node, steady]
            await watch.until(
                lambda m: all(online(watch, a.machine_id) for a in agents), 10, "both nodes online"
            )

            await proxy.cut()
            record("network_cuts")
            lease = max(2, round(3 * REPORT))
            # offline once its lease runs out (and not before: for most of the lease it still shows online)
            await watch.until(
                lambda m: online(watch, cut_node.machine_id) is False, lease + 5, "cut node offline"
            )
            assert online(watch, steady.machine_id) is True
            assert cut_node.up.is_set()  # the machine itself is fine, only its network is gone
            cut_row = watch.pump().get(cut_node.machine_id)
            assert cut_row is not None
            assert [r.machine_id for r in watch.model.filter_rows("online:no")] == [cut_node.machine_id]
            reported_before = cut_row.rev

            await proxy.restore()
            await watch.until(
                lambda m: online(watch, cut_node.machine_id) is True, 15, "cut node back online"
            )
            back = watch.pump().get(cut_node.machine_id)
            assert back is not None and back.rev > reported_before
            assert watch.model.filter_rows("online:no") == []
            check("cut_node_shown_offline_then_back", [])
        finally:
            for agent in agents:
                await agent.stop()
                await agent.etcd.close()
            await proxy.stop()
