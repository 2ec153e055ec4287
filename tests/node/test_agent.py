"""NodeAgent against a real etcd: the status report, the alive lease, commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aetcd
import httpx
import pytest

from coreroll.audit import read_audit
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3kv import AetcdKV
from coreroll.node.agent import AgentOptions, NodeAgent, provision_node
from coreroll.node.clock import ScaledClock
from coreroll.node.engine import EngineTimings
from coreroll.node.nodestatus import alive_key, status_key
from coreroll.wire.keys import command_key
from tests.node.test_engine_support import etcd_client, wait_for

__all__ = ["etcd_client"]

DESIGN_KEYS = {
    "machine_id", "hostname", "channel", "server", "version", "active_partition", "partitions",
    "update", "reboot", "boot_id", "booted_at", "reported_at",
}  # fmt: skip
QUIET = EngineTimings(first_check=10**7, first_check_fuzz=0, interval=10**7, interval_fuzz=0)


async def get_json(client: aetcd.Client, key: str) -> dict[str, Any] | None:
    kv = await client.get(key.encode())
    return None if kv is None else dict(json.loads(kv.value))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def make_agent(
    state: Path,
    etcd: aetcd.Client,
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    server: str = "http://127.0.0.1:9",
    report_interval: float = 5.0,
    timings: EngineTimings = QUIET,
    **kwargs: Any,
) -> NodeAgent:
    if not (state / "machine-id").exists():
        provision_node(
            state, version="1.0.0", image=b"image 1.0.0", server=server, lock_group="workers", fsync=False
        )
    return NodeAgent(
        state,
        AetcdKV(etcd),
        http,
        ScaledClock(1000),
        options=AgentOptions(
            report_interval=report_interval, timings=timings, hostname="node-1", fsync=False
        ),
        etcd_config=EtcdConfig(endpoints=(endpoint,)),
        **kwargs,
    )


async def test_status_matches_design_and_alive_goes_with_a_clean_stop(
    tmp_path: Path, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    agent = make_agent(tmp_path, etcd_client, http, clean_etcd)
    await agent.start()
    try:
        doc = await wait_for(lambda: get_json(etcd_client, status_key(agent.machine_id)), what="status")
        assert DESIGN_KEYS <= set(doc)
        assert doc["machine_id"] == agent.machine_id and doc["hostname"] == "node-1"
        assert (doc["channel"], doc["version"], doc["active_partition"]) == ("stable", "1.0.0", "USR-A")
        assert doc["server"] == "http://127.0.0.1:9/v1/update/"
        assert [p["label"] for p in doc["partitions"]] == ["USR-A", "USR-B"]
        assert doc["partitions"][1] == {
            "label": "USR-B",
            "version": None,
            "priority": 1,
            "tries": 0,
            "successful": 0,
        }
        assert doc["update"]["status"] == "UPDATE_STATUS_IDLE"
        assert doc["reboot"]["strategy"] == "etcd-lock" and doc["reboot"]["lock_group"] == "workers"
        assert doc["reboot"]["holds_lock"] is False
        assert doc["boot_id"] == agent.boot_id and doc["booted_at"].endswith("Z")
        alive = await wait_for(
            lambda: etcd_client.get(alive_key(agent.machine_id).encode()), what="alive key"
        )
        assert alive.lease != 0
        # The boot is marked good 45 s (scaled) after start: the report follows.
        doc = await wait_for(
            lambda: _successful_a(etcd_client, agent.machine_id), what="USR-A marked good in the report"
        )
    finally:
        await agent.stop()
    assert await etcd_client.get(alive_key(agent.machine_id).encode()) is None
    assert await get_json(etcd_client, status_key(agent.machine_id)) is not None  # the last state stays


async def _successful_a(client: aetcd.Client, machine_id: str) -> dict[str, Any] | None:
    doc = await get_json(client, status_key(machine_id))
    if doc and doc["partitions"][0]["tries"] == 0 and doc["partitions"][0]["successful"] == 1:
        return doc
    return None


@pytest.mark.slow
async def test_alive_key_expires_when_the_node_dies(
    tmp_path: Path, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    agent = make_agent(tmp_path, etcd_client, http, clean_etcd, report_interval=0.7)  # lease TTL 2 s
    await agent.start()
    await wait_for(lambda: etcd_client.get(alive_key(agent.machine_id).encode()), what="alive key")
    await agent.kill()
    assert await etcd_client.get(alive_key(agent.machine_id).encode()) is not None  # nobody revoked it
    await wait_for(
        lambda: _absent(etcd_client, alive_key(agent.machine_id)), within=10, what="alive key to expire"
    )


@pytest.mark.slow
async def test_a_kill_during_the_reboots_shutdown_stops_every_task(
    tmp_path: Path, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    """The machine dies while its reboot is stopping the update engine: the reporter must not
    survive the kill and keep the alive key (and the holder's row) alive for ever."""
    agent = make_agent(tmp_path, etcd_client, http, clean_etcd, report_interval=0.7)  # lease TTL 2 s
    await agent.start()
    await wait_for(lambda: etcd_client.get(alive_key(agent.machine_id).encode()), what="alive key")
    reporter = [t for t in agent._up_tasks if t.get_name().startswith("reporter-")]
    stopping = asyncio.Event()

    real_stop = agent._stop_engine

    async def slow_engine_stop() -> None:
        if not stopping.is_set():
            stopping.set()
            await asyncio.Event().wait()  # the engine takes its time; the kill lands meanwhile
        await real_stop()

    agent._stop_engine = slow_engine_stop  # type: ignore[method-assign]
    main = agent._main
    assert main is not None
    main.cancel()  # stands in for the lifecycle reaching _reboot: a clean bring-down as the main task
    agent._main = asyncio.create_task(agent._bring_down(clean=True))
    await asyncio.wait_for(stopping.wait(), 5)
    await agent.kill()
    assert reporter and all(t.done() for t in reporter)
    await wait_for(
        lambda: _absent(etcd_client, alive_key(agent.machine_id)), within=10, what="alive key to expire"
    )


async def _absent(client: aetcd.Client, key: str) -> bool:
    return await client.get(key.encode()) is None


async def put_command(client: aetcd.Client, machine_id: str, command_id: str, doc: Any) -> str:
    key = command_key(machine_id, command_id)
    value = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    await client.put(key.encode(), value)
    return key


async def test_refused_commands_are_reported_deleted_and_nothing_else_happens(
    tmp_path: Path, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    agent = make_agent(tmp_path, etcd_client, http, clean_etcd)
    conf_before = (tmp_path / "update.conf").read_bytes()
    await agent.start()
    try:
        await wait_for(agent.up.is_set, what="agent up")
        engine = agent.engine
        key = await put_command(
            etcd_client, agent.machine_id, "0001", {"action": "reformat-disk", "args": {}, "by": "t@h"}
        )
        await wait_for(lambda: _absent(etcd_client, key), what="command deleted")
        doc = await wait_for(
            lambda: _with_command(etcd_client, agent.machine_id, "0001"), what="last_command in status"
        )
        assert doc["last_command"]["action"] == "reformat-disk"
        assert "unknown action" in doc["last_command"]["result"]
        audit = await read_audit(EtcdConfig(endpoints=(clean_etcd,)), kv=AetcdKV(etcd_client))
        assert any(r["target"] == agent.machine_id and "unknown action" in r["result"] for r in audit)
        # issue 16 defect 3: what is not a channel name is refused where the command is read
        for number, channel in enumerate(["$(reboot)", "beta\x00", "\x1b[2J", "a" * 70_000], start=2):
            command = {"action": "set-channel", "args": {"channel": channel}}
            await put_command(etcd_client, agent.machine_id, f"{number:04d}", command)
            doc = await wait_for(
                lambda n=number: _with_command(etcd_client, agent.machine_id, f"{n:04d}"), what="refusal"
            )
            assert doc["last_command"]["result"].startswith("set-channel refused: args.channel '")
            assert "is not a channel name" in doc["last_command"]["result"]
        # Nothing else: same engine, no check, update.conf untouched.
        assert agent.engine is engine and not engine.attempts and agent.conf.group == "stable"
        assert (tmp_path / "update.conf").read_bytes() == conf_before
    finally:
        await agent.stop()


async def _with_command(client: aetcd.Client, machine_id: str, command_id: str) -> dict[str, Any] | None:
    doc = await get_json(client, status_key(machine_id))
    if doc and doc.get("last_command") and doc["last_command"]["id"] == command_id:
        return doc
    return None


async def test_commands_queued_before_start_run_in_order_then_set_channel_restarts_the_engine(
    tmp_path: Path, etcd_client: aetcd.Client, http: httpx.AsyncClient, clean_etcd: str
) -> None:
    agent = make_agent(tmp_path, etcd_client, http, clean_etcd)
    (tmp_path / "update.conf").write_text((tmp_path / "update.conf").read_text() + "# keep me\nFOO=bar\n")
    first = await put_command(
        etcd_client, agent.machine_id, "0001", {"action": "set-channel", "args": {"channel": "alpha"}}
    )
    second = await put_command(etcd_client, agent.machine_id, "0002", b"{broken json")
    third = await put_command(
        etcd_client, agent.machine_id, "0003", {"action": "set-channel", "args": {"channel": "beta"}}
    )
    await agent.start()
    try:
        doc = await wait_for(
            lambda: _with_command(etcd_client, agent.machine_id, "0003"), what="third command"
        )
        assert doc["channel"] == "beta"
        assert "alpha -> beta" in doc["last_command"]["result"]  # ran after the alpha one
        for key in (first, second, third):
            assert await etcd_client.get(key.encode()) is None
        conf = (tmp_path / "update.conf").read_text()
        assert "GROUP=beta" in conf and "# keep me\nFOO=bar" in conf
        assert agent.engine is not None and agent.engine.track == "beta"
        audit = await read_audit(EtcdConfig(endpoints=(clean_etcd,)), kv=AetcdKV(etcd_client))
        assert any("unreadable command" in r["result"] for r in audit)

        engine = agent.engine
        bad = await put_command(etcd_client, agent.machine_id, "0004", {"action": "set-channel", "args": {}})
        await wait_for(lambda: _absent(etcd_client, bad), what="refused set-channel deleted")
        assert agent.engine is engine and agent.conf.group == "beta"  # refused: nothing changed
    finally:
        await agent.stop()
