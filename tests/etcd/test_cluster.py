"""coreroll against a three-member etcd cluster, as production runs it: the member a client is
using dies (SIGKILL), and the locks and the dashboard's watch carry on through the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coreroll.etcd.cluster import EmbeddedCluster
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import open_lock_store, semaphore_key
from coreroll.node.nodestatus import alive_key, status_key
from tests.locks.rawetcd import raw_get
from tests.node.test_agent import make_agent
from tests.node.test_engine_support import wait_for as node_wait_for
from tests.tui.helpers import wait_for
from tests.watch.helpers import status_bytes
from tests.watch.test_etcd_source import STATUS, Running, comparable, etcd_truth

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(3) as members:
        yield members


def leader(cluster: EmbeddedCluster) -> EmbeddedEtcd:
    """The member that is raft leader now (by the members' own status)."""
    for member in cluster.members:
        if not member.running:
            continue
        status = httpx.post(f"{member.endpoint}/v3/maintenance/status", json={}, timeout=5).json()
        if status["leader"] == status["header"]["member_id"]:
            return member
    raise AssertionError("no member says it is the leader")


def has_leader(cluster: EmbeddedCluster) -> bool:
    try:
        return leader(cluster) is not None
    except (AssertionError, httpx.HTTPError, KeyError):  # mid-election: no leader, or no answer
        return False


def first(member: EmbeddedEtcd, cluster: EmbeddedCluster) -> tuple[str, ...]:
    """The cluster's endpoints with `member` first: clients connect to the first that answers."""
    return (member.endpoint, *(m.endpoint for m in cluster.members if m is not member))


async def test_locks_fail_over_when_the_member_in_use_dies(cluster: EmbeddedCluster) -> None:
    follower = next(m for m in cluster.members if m is not leader(cluster))
    config = EtcdConfig(endpoints=first(follower, cluster), timeout=2.0)
    async with open_lock_store(config) as store:
        await store.set_max("", 2)
        await store.lock("", "node-a")
        assert (await store.v3_kv()).endpoint == follower.endpoint
        follower.kill()
        await store.lock("", "node-b")  # the channel moves to the next member and carries on
        await store.unlock("", "node-a")
        sem, _ = await store.get("")
        assert (sem.semaphore, sem.max, sem.holders) == (1, 2, ["node-b"])
    # the dead member comes back with its data and catches up: it serves the same bytes
    follower.start()
    assert (
        raw_get(follower.endpoint, "v3", semaphore_key("")) == b'{"semaphore":1,"max":2,"holders":["node-b"]}'
    )


async def test_the_dashboard_watch_misses_nothing_when_the_leader_it_reads_dies(
    cluster: EmbeddedCluster,
) -> None:
    old_leader = leader(cluster)
    endpoints = first(old_leader, cluster)
    writer = await connect_v3(EtcdConfig(endpoints=endpoints[1:], timeout=2.0))
    run = Running(endpoints, probe_interval=0.2)
    try:
        for mid in ("a", "b"):
            await writer.put(STATUS.format(mid).encode(), status_bytes(mid))
        await run.until(lambda m: {"a", "b"} <= set(m.rows), what="the first nodes")
        old_leader.kill()
        await wait_for(lambda: has_leader(cluster), timeout=15, what="a new leader among the other two")
        for mid in ("c", "d"):
            await writer.put(
                STATUS.format(mid).encode(), status_bytes(mid, status="UPDATE_STATUS_DOWNLOADING")
            )
        await writer.put(STATUS.format("a").encode(), status_bytes("a", status="UPDATE_STATUS_VERIFYING"))
        await run.until(
            lambda m: {"c", "d"} <= set(m.rows) and m.rows["a"].update_status == "UPDATE_STATUS_VERIFYING",
            deadline=20,
            what="the writes made after the leader died",
        )
        await run.until(lambda m: m.connections["etcd"].status == "connected", what="etcd connected again")
        assert comparable(run.model) == comparable(await etcd_truth(endpoints[1]))
    finally:
        await run.close()
        await writer.close()


async def test_an_agent_keeps_reporting_when_the_member_it_uses_dies(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    """The agent shares one client between its reporter, reboot locks and command watch: when its
    member dies, its status and its alive lease carry on through the others."""
    follower = next(m for m in cluster.members if m is not leader(cluster))
    etcd = await connect_v3(EtcdConfig(endpoints=first(follower, cluster), timeout=2.0))
    observer = await connect_v3(EtcdConfig(endpoints=first(leader(cluster), cluster), timeout=2.0))
    async with httpx.AsyncClient(timeout=5) as http:
        agent = make_agent(tmp_path, etcd, http, follower.endpoint, report_interval=0.7)  # lease TTL 2 s
        await agent.start()
        try:
            status, alive = status_key(agent.machine_id).encode(), alive_key(agent.machine_id).encode()
            await node_wait_for(lambda: observer.get(alive), what="the alive key")
            await node_wait_for(lambda: observer.get(status), what="the first status report")
            follower.kill()
            revisions: set[int] = set()

            async def reported_three_times() -> bool:
                kv = await observer.get(status)
                assert kv is not None, "the status key vanished after the member died"
                revisions.add(kv.mod_revision)
                return len(revisions) > 3  # > 2 s of heartbeats since the kill: past the lease TTL

            await node_wait_for(reported_three_times, within=15, what="status reports after the kill")
            assert await observer.get(alive) is not None  # the lease was kept (or renewed) meanwhile
        finally:
            await agent.stop()
            await etcd.close()
            await observer.close()
