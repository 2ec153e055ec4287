"""EtcdSource against a real etcd: list then watch, corrupt values, etcd stopped and restarted."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.port import open_kv
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import open_lock_store, semaphore_key
from coreroll.watch.actions import Actions
from coreroll.watch.backoff import Backoff
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from coreroll.wire.keys import airlock_group_key, alive_key, command_prefix, lock_group_key, status_key
from tests.watch.helpers import status_bytes, wait_model

STATUS = status_key("{}")
ALIVE = alive_key("{}")


def sem(available: int, maximum: int, holders: list[str]) -> bytes:
    return json.dumps({"semaphore": available, "max": maximum, "holders": holders or None}).encode()


class Running:
    """A source running in a task, feeding a model through an UpdateBuffer."""

    def __init__(self, endpoint: str | tuple[str, ...], api: str = "v3", **kwargs: Any) -> None:
        self.buffer = UpdateBuffer()
        self.model = FleetModel()
        endpoints = (endpoint,) if isinstance(endpoint, str) else endpoint
        config = EtcdConfig(endpoints=endpoints, api=api, timeout=2.0)
        self.source = EtcdSource(config, self.buffer.put, **kwargs)
        self.task = asyncio.create_task(self.source.run())

    async def until(self, predicate: Any, deadline: float = 10.0, what: str = "condition") -> float:
        return await wait_model(self.model, self.buffer, predicate, deadline, what)

    async def close(self) -> None:
        self.source.stop()
        await asyncio.wait_for(self.task, 5)


def comparable(model: FleetModel) -> dict[str, Any]:
    """What the screen shows, minus bookkeeping (revisions, first-seen times)."""
    rows = {mid: dataclasses.replace(row, rev=0, status_since=None) for mid, row in model.rows.items()}
    locks = [
        (v.ident, v.available, v.max, tuple(h.machine_id for h in v.holders), v.error)
        for v in model.lock_groups()
    ]
    return {"rows": rows, "locks": locks}


async def etcd_truth(endpoint: str) -> FleetModel:
    """A model built from a fresh listing of etcd: what the dashboard must end up showing."""
    source = EtcdSource(EtcdConfig(endpoints=(endpoint,)), lambda _u: None)
    client = await open_kv(source.config, "v3")
    try:
        truth = FleetModel()
        truth.apply(await source._list(client))
        return truth
    finally:
        await client.close()


async def test_lists_then_follows_changes(v3: Any, clean_etcd: str) -> None:
    await v3.put(STATUS.format("m1").encode(), status_bytes("m1"))
    await v3.put(ALIVE.format("m1").encode(), b"1")
    await v3.put(semaphore_key("").encode(), sem(0, 1, ["m1"]))
    run = Running(clean_etcd)
    try:
        await run.until(lambda m: "m1" in m.rows and m.lock_groups(), what="the initial listing")
        row = run.model.rows["m1"]
        assert (row.hostname, row.version, row.other_version, row.online, row.holds_lock) == (
            "host-m1",
            "4699.0.0",
            "4650.0.0",
            True,
            True,
        )
        assert run.model.connections["etcd"].status == "connected"

        # changes after the listing arrive through the watch
        await v3.put(
            STATUS.format("m2").encode(), status_bytes("m2", status="UPDATE_STATUS_DOWNLOADING", progress=0.5)
        )
        await v3.put(semaphore_key("").encode(), sem(1, 1, []))
        await v3.delete(ALIVE.format("m1").encode())
        await run.until(
            lambda m: "m2" in m.rows and m.rows["m1"].online is False and not m.rows["m1"].holds_lock,
            what="watched changes",
        )
        assert run.model.rows["m2"].status_label == "downloading"
        assert run.model.rows["m2"].update_progress == 0.5
        assert run.source.resyncs == 1
        assert comparable(run.model) == comparable(await etcd_truth(clean_etcd))
    finally:
        await run.close()


async def test_corrupt_status_marks_only_that_node_unreadable(v3: Any, clean_etcd: str) -> None:
    await v3.put(STATUS.format("good").encode(), status_bytes("good"))
    await v3.put(STATUS.format("bad").encode(), b'{"hostname": "x", "version": ')
    await v3.put(semaphore_key("web").encode(), b"not json")
    run = Running(clean_etcd)
    try:
        await run.until(lambda m: {"good", "bad"} <= set(m.rows) and m.lock_groups(), what="both nodes")
        bad = run.model.rows["bad"]
        assert bad.state == "unreadable"
        assert bad.error is not None and status_key("bad") in bad.error
        assert run.model.rows["good"].state == "idle" and run.model.rows["good"].error is None
        (lock,) = run.model.lock_groups()
        assert lock.error is not None and lock_group_key("web") in lock.error
        # a later good value clears the mark
        await v3.put(STATUS.format("bad").encode(), status_bytes("bad"))
        await run.until(lambda m: m.rows["bad"].error is None, what="the repaired status")
        # etcd still holds the corrupt semaphore: we never wrote over it
        assert (await v3.get(semaphore_key("web").encode())).value == b"not json"
    finally:
        await run.close()


@pytest.mark.slow
async def test_etcd_stopped_then_restarted(own_etcd: EmbeddedEtcd) -> None:
    endpoint = own_etcd.endpoint
    client = await connect_v3(EtcdConfig(endpoints=(endpoint,)))
    for mid in ("a", "b", "c"):
        await client.put(STATUS.format(mid).encode(), status_bytes(mid))
    await client.put(semaphore_key("").encode(), sem(0, 1, ["a"]))
    await client.close()
    # a slow first retry leaves room to change etcd before the source comes back
    run = Running(endpoint, backoff=Backoff(base=2.0, cap=2.0), probe_interval=0.5)
    try:
        await run.until(lambda m: len(m.rows) == 3, what="three nodes")
        before = comparable(run.model)

        own_etcd.stop(keep_data=True)
        stopped = time.monotonic()
        await run.until(lambda m: m.connections["etcd"].status == "down", deadline=5.0, what="etcd down")
        assert time.monotonic() - stopped < 5.0
        assert comparable(run.model) == before  # the last state is kept (shown stale)
        assert run.model.is_stale("etcd")
        assert any("etcd unreachable" in e.message for e in run.model.activity)

        own_etcd.start()
        client = await connect_v3(EtcdConfig(endpoints=(endpoint,)))
        await client.delete(STATUS.format("b").encode())
        await client.put(
            STATUS.format("c").encode(), status_bytes("c", status="UPDATE_STATUS_UPDATED_NEED_REBOOT")
        )
        await client.put(STATUS.format("d").encode(), b"{broken")
        await client.put(semaphore_key("").encode(), sem(0, 1, ["c"]))
        await client.close()

        await run.until(
            lambda m: m.connections["etcd"].status == "connected", deadline=15.0, what="reconnect"
        )
        truth = await etcd_truth(endpoint)
        await run.until(lambda m: comparable(m) == comparable(truth), what="etcd's state after the gap")
        assert set(run.model.rows) == {"a", "c", "d"}
        assert run.model.rows["d"].state == "unreadable"
        assert [h.machine_id for h in run.model.lock_groups()[0].holders] == ["c"]
        assert run.source.resyncs >= 2
    finally:
        await run.close()


@pytest.mark.parametrize("airlock", [True])
async def test_airlock_groups_when_asked(v3: Any, clean_etcd: str, airlock: bool) -> None:
    key = airlock_group_key("workers")
    await v3.put(key.encode(), json.dumps({"total_slots": 2, "holders": ["n1"]}).encode())
    run = Running(clean_etcd, airlock=airlock)
    try:
        await run.until(lambda m: m.lock_groups(), what="the airlock group")
        (group,) = run.model.lock_groups()
        assert (group.display_name, group.available, group.max) == ("airlock/workers", 1, 2)
        holder = group.holders[0]
        assert holder.machine_id == "n1" and holder.stale and holder.stale_reason == "unknown to the fleet"
    finally:
        await run.close()


async def test_v2_lock_groups_for_locksmith_clusters(clean_etcd: str) -> None:
    config = EtcdConfig(endpoints=(clean_etcd,), api="v2")
    async with open_lock_store(config) as store:
        await store.set_max("web", 2)
        await store.lock("web", "n1")
    run = Running(clean_etcd, api="v2")
    try:
        await run.until(lambda m: m.lock_group("web") is not None, what="the v2 group")
        group = run.model.lock_group("web")
        assert group is not None and (group.kind, group.available, group.max) == ("v2", 1, 2)
        assert group.key == "/" + lock_group_key("web")
        async with open_lock_store(config) as store:
            await store.lock("web", "n2")
        await run.until(
            lambda m: [h.machine_id for h in m.lock_group("web").holders] == ["n1", "n2"],  # type: ignore[union-attr]
            what="the second holder",
        )
    finally:
        await run.close()


async def test_interventions_show_as_pending_commands_and_in_the_log(v3: Any, clean_etcd: str) -> None:
    await v3.put(STATUS.format("n1").encode(), status_bytes("n1"))
    run = Running(clean_etcd)
    try:
        await run.until(lambda m: "n1" in m.rows, what="the node")
        actions = Actions(run.source.config, None, None, by="ops@bastion")
        assert (await actions.check(["n1"])).ok
        await run.until(
            lambda m: (
                [c.action for c in m.rows["n1"].pending_commands] == ["check"]
                and any(e.source == "audit" for e in m.activity)
            ),
            what="the queued check and its audit record",
        )
        entry = next(e for e in run.model.activity if e.source == "audit")
        assert entry.message == "check node n1: ok" and entry.by == "ops@bastion"
        # the agent runs it and deletes the key: the row no longer lists it
        (kv,) = list(await v3.get_prefix(command_prefix("n1").encode()))
        await v3.delete(kv.key)
        await run.until(lambda m: m.rows["n1"].pending_commands == (), what="the command done")
    finally:
        await run.close()


async def test_listing_is_paged(v3: Any, clean_etcd: str) -> None:
    # gRPC refuses replies over 4 MiB (10,000 statuses are ~8 MB): the listing reads pages
    for i in range(7):
        await v3.put(STATUS.format(f"p{i}").encode(), status_bytes(f"p{i}"))
    run = Running(clean_etcd, page_size=2)
    try:
        await run.until(lambda m: len(m.rows) == 7, what="all seven nodes")
    finally:
        await run.close()


class CompactingSource(EtcdSource):
    """Changes etcd and compacts its history right after listing, once: the watch that follows
    asks for revisions etcd no longer has."""

    compacted = False

    async def _list(self, client: Any) -> Any:
        snapshot = await super()._list(client)
        if not self.compacted:
            self.compacted = True
            client = client.client  # the aetcd client under the port: the port has no compaction
            await client.put(STATUS.format("late").encode(), status_bytes("late"))
            await client.delete(STATUS.format("early").encode())
            reply = await client.put(STATUS.format("late").encode(), status_bytes("late", version="4700.0.1"))
            await client.compact(reply.header.revision)
        return snapshot


async def test_compacted_history_means_a_relist_not_an_outage(v3: Any, clean_etcd: str) -> None:
    await v3.put(STATUS.format("early").encode(), status_bytes("early"))
    buffer = UpdateBuffer()
    model = FleetModel()
    source = CompactingSource(EtcdConfig(endpoints=(clean_etcd,), timeout=1.0), buffer.put)
    task = asyncio.create_task(source.run())
    try:
        await wait_model(model, buffer, lambda m: set(m.rows) == {"late"}, what="the state after compaction")
        assert model.rows["late"].version == "4700.0.1"
        assert source.compactions == 1 and source.resyncs == 2
        assert model.connections["etcd"].status == "connected"
        assert not any(e.kind == "Connection" for e in model.activity)  # never reported down
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)


@pytest.mark.slow
async def test_a_hung_etcd_is_noticed_by_the_probe(own_etcd: EmbeddedEtcd) -> None:
    # SIGSTOP keeps the connection open but silent: only the health probe can tell
    client = await connect_v3(EtcdConfig(endpoints=(own_etcd.endpoint,)))
    await client.put(STATUS.format("n1").encode(), status_bytes("n1"))
    await client.close()
    run = Running(own_etcd.endpoint, probe_interval=0.5)
    assert own_etcd.process is not None
    try:
        await run.until(lambda m: "n1" in m.rows, what="the node")
        own_etcd.process.send_signal(signal.SIGSTOP)
        try:
            waited = await run.until(
                lambda m: m.connections["etcd"].status == "down", deadline=5.0, what="down"
            )
            assert waited < 5.0
            assert any(e.message.startswith("etcd unreachable: etcd ") for e in run.model.activity)
        finally:
            own_etcd.process.send_signal(signal.SIGCONT)
        await run.until(lambda m: m.connections["etcd"].status == "connected", deadline=15.0, what="back")
        assert "n1" in run.model.rows
    finally:
        await run.close()
