"""NodeAgent end to end: real etcd, the real update server, signed payloads, the reboot lock.

An update installs, the node takes the lock, reboots into the new partition, marks it good and
releases the lock; a release that never comes up rolls back and is reported as 3/0 errorcode 44;
a `check` command runs an on-demand check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aetcd
import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import get_at_revision
from coreroll.etcd.v3kv import AetcdKV
from coreroll.locks.v3store import V3LockStore
from coreroll.node.agent import AgentOptions, NodeAgent, provision_node
from coreroll.node.clock import ScaledClock
from coreroll.node.engine import EngineTimings
from coreroll.node.nodestatus import status_key
from coreroll.node.partitions import Partition
from coreroll.wire.keys import command_key, lock_group_key
from tests.node.test_engine_support import (
    etcd_client,
    instance,
    publish_synthetic,
    server_public_key,
    update_server,
    wait_for,
)

pytestmark = pytest.mark.slow

__all__ = ["etcd_client", "update_server"]

# Clock seconds; at 1000x the first check comes ~0.1 s after boot.
TIMINGS = EngineTimings(first_check=120, first_check_fuzz=60, interval=600, interval_fuzz=60)


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def report(client: aetcd.Client, machine_id: str) -> dict[str, Any] | None:
    kv = await client.get(status_key(machine_id).encode())
    return None if kv is None else dict(json.loads(kv.value))


def node(
    state: Path,
    server: Any,
    etcd: aetcd.Client,
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    timings: EngineTimings = TIMINGS,
    comes_up: Any = None,
) -> NodeAgent:
    provision_node(
        state, version="1.0.0", image=b"image 1.0.0", server=server.url, lock_group="workers", fsync=False
    )
    config = EtcdConfig(endpoints=(endpoint,))
    return NodeAgent(
        state,
        AetcdKV(etcd),
        http,
        ScaledClock(1000),
        public_key=server_public_key(server.settings.data_dir),
        lock_store=V3LockStore(config, kv=AetcdKV(etcd)),
        comes_up=comes_up,
        options=AgentOptions(
            report_interval=5, reboot_duration=30, failed_boot_timeout=120, timings=timings, fsync=False
        ),
        etcd_config=config,
    )


async def test_update_takes_the_lock_reboots_into_the_new_partition_and_releases(
    tmp_path: Path, update_server: Any, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    publish_synthetic(update_server, "2.0.0")
    agent = node(tmp_path, update_server, etcd_client, http, clean_etcd)
    await agent.start()
    try:

        async def rebooted_on_new() -> dict[str, Any] | None:
            doc = await report(etcd_client, agent.machine_id)
            if doc and doc["version"] == "2.0.0" and doc["partitions"][1]["successful"] == 1:
                return doc if not doc["reboot"]["holds_lock"] else None
            return None

        doc = await wait_for(rebooted_on_new, within=20, what="node on 2.0.0, marked good, lock released")
        assert agent.boot_count == 2
        assert doc["active_partition"] == "USR-B"
        assert doc["partitions"][1] == {
            "label": "USR-B",
            "version": "2.0.0",
            "priority": 2,
            "tries": 0,
            "successful": 1,
        }
        lock_key = lock_group_key("workers").encode()
        semaphore = json.loads((await etcd_client.get(lock_key)).value)
        assert semaphore["semaphore"] == 1 and semaphore["holders"] in (None, [])  # released after boot
        # It rebooted holding the lock: the semaphore as written by its lock call names it.
        revision = agent.reboot_manager.lock_revision
        assert revision is not None
        at_lock = await get_at_revision(etcd_client, lock_key, revision)
        assert at_lock is not None and json.loads(at_lock.value)["holders"] == [agent.machine_id]
        inst = await wait_for(
            lambda: (i := instance(update_server, agent.machine_id)) and i["status"] == "Complete" and i,
            what="server sees Complete",
        )
        assert inst["version"] == "2.0.0"
    finally:
        await agent.stop()


async def test_release_that_never_comes_up_rolls_back_and_reports_44(
    tmp_path: Path, update_server: Any, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    publish_synthetic(update_server, "2.0.0")
    tried: list[str | None] = []

    def comes_up(partition: Partition) -> bool:
        tried.append(partition.version)
        return partition.version != "2.0.0"

    # After the rollback the server offers 2.0.0 again; a long interval keeps the test to one round.
    agent = node(
        tmp_path,
        update_server,
        etcd_client,
        http,
        clean_etcd,
        comes_up=comes_up,
        timings=EngineTimings(first_check=120, first_check_fuzz=0, interval=10**6, interval_fuzz=0),
    )
    await agent.start()
    try:

        def rollback_reported() -> bool:
            found = instance(update_server, agent.machine_id)
            return bool(found) and any(h["errorcode"] == 44 for h in found["history"])

        await wait_for(rollback_reported, within=20, what="3/0 errorcode 44 in the server's history")
        assert tried[:3] == ["1.0.0", "2.0.0", "1.0.0"]  # first boot, the failed one, the fallback
        doc = await wait_for(lambda: report(etcd_client, agent.machine_id), what="report")
        assert (doc["version"], doc["active_partition"]) == ("1.0.0", "USR-A")
        assert doc["partitions"][1]["tries"] == 0 and doc["partitions"][1]["successful"] == 0
        assert agent.disk.rolled_back()
    finally:
        await agent.stop()


async def test_check_command_runs_an_on_demand_check(
    tmp_path: Path, update_server: Any, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    quiet = EngineTimings(first_check=10**7, first_check_fuzz=0, interval=10**7, interval_fuzz=0)
    publish_synthetic(update_server, "1.0.0")
    agent = node(tmp_path, update_server, etcd_client, http, clean_etcd, timings=quiet)
    await agent.start()
    try:
        await wait_for(agent.up.is_set, what="agent up")
        assert instance(update_server, agent.machine_id) is None  # no scheduled check yet
        key = command_key(agent.machine_id, "0001")
        await etcd_client.put(key.encode(), json.dumps({"action": "check", "args": {}}).encode())
        await wait_for(lambda: instance(update_server, agent.machine_id), what="the server to see the check")
        assert await etcd_client.get(key.encode()) is None
        assert agent.last_command is not None and agent.last_command["result"] == "update check started"
        assert agent.engine is not None and agent.engine.attempts[0][1].value == "no-update"
    finally:
        await agent.stop()
