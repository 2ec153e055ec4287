"""FeedSource and the server-side actions against a real update server (uvicorn, SQLite)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from coreroll.server import runner
from coreroll.server.runner import RunningServer
from coreroll.watch import updates as u
from coreroll.watch.actions import Actions
from coreroll.watch.backoff import Backoff
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from coreroll.wire.keys import COMMANDS_PREFIX, command_prefix
from tests.watch.conftest import start_server
from tests.watch.helpers import admin_call, check_in, publish, wait_model

pytestmark = pytest.mark.slow


class Running:
    def __init__(self, url: str, **kwargs: Any) -> None:
        self.buffer = UpdateBuffer()
        self.model = FleetModel()
        self.source = FeedSource(url, self.buffer.put, **kwargs)
        self.task = asyncio.create_task(self.source.run())

    async def until(self, predicate: Any, deadline: float = 10.0, what: str = "condition") -> float:
        return await wait_model(self.model, self.buffer, predicate, deadline, what)

    async def close(self) -> None:
        self.source.stop()
        await asyncio.wait_for(self.task, 5)


def server_view(model: FleetModel) -> dict[str, Any]:
    """What the dashboard shows from the server."""
    return {
        "channels": [(c.name, c.version) for c in model.channels()],
        "groups": [(g.id, g.paused, g.halted_reason, g.rollout_in_progress) for g in model.groups()],
        "instances": {mid: row.instance for mid, row in model.rows.items()},
    }


async def server_truth(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        snap = (await http.get("/api/v1/snapshot")).json()
    truth = FleetModel()
    truth.apply(u.FeedSnapshot(tuple(snap["channels"]), tuple(snap["groups"]), tuple(snap["instances"])))
    return server_view(truth)


async def test_snapshot_then_live_events(server: RunningServer) -> None:
    publish(server, "4600.0.0", "beta")
    check_in(server.url, "early")
    run = Running(server.url)
    try:
        await run.until(
            lambda m: "early" in m.rows and m.channel_version("beta") == "4600.0.0", what="snapshot"
        )
        assert run.model.connections["server"].status == "connected"
        assert {g.id for g in run.model.groups()} >= {"alpha", "beta", "stable"}

        publish(server, "4700.0.1", "beta")
        check_in(server.url, "late")  # offered 4700.0.1: UpdateGranted
        await run.until(
            lambda m: m.channel_version("beta") == "4700.0.1" and "late" in m.rows, what="live events"
        )
        row = run.model.rows["late"]
        # known only to the server: version, channel and status shown, the rest unknown
        assert (row.version, row.channel, row.server_status) == ("4600.0.0", "beta", "UpdateGranted")
        assert row.hostname is None and row.online is None and row.state == "updating"
        assert any(e.kind == "ChannelUpdated" for e in run.model.activity)
        assert run.source.resyncs == 1
        assert server_view(run.model) == await server_truth(server.url)
    finally:
        await run.close()


async def test_server_stopped_then_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server(tmp_path / "srv")
    publish(server, "4600.0.0", "beta")
    check_in(server.url, "n1")
    run = Running(server.url, backoff=Backoff(base=2.0, cap=2.0), probe_interval=0.5)
    try:
        await run.until(lambda m: "n1" in m.rows, what="first instance")
        before = server_view(run.model)

        server.stop()
        stopped = time.monotonic()
        await run.until(lambda m: m.connections["server"].status == "down", deadline=5.0, what="server down")
        assert time.monotonic() - stopped < 5.0
        assert server_view(run.model) == before and run.model.is_stale("server")

        # the same address again, same database; change things before the source is back
        port = int(server.url.rsplit(":", 1)[1])
        monkeypatch.setattr(runner, "free_port", lambda: port)
        server = start_server(tmp_path / "srv")
        publish(server, "4700.0.1", "beta")
        check_in(server.url, "n2")
        assert admin_call(server, "POST", "/api/v1/groups/beta/pause").status_code == 200

        await run.until(
            lambda m: m.connections["server"].status == "connected", deadline=15.0, what="reconnect"
        )
        truth = await server_truth(server.url)
        await run.until(lambda m: server_view(m) == truth, what="the server's state after the gap")
        assert run.model.group("beta").paused  # type: ignore[union-attr]
        assert run.model.channel_version("beta") == "4700.0.1"
        assert run.source.resyncs >= 2
    finally:
        await run.close()
        server.stop()


async def test_pause_resume_and_set_channel_through_the_server(
    server: RunningServer, clean_etcd: str, v3: Any
) -> None:
    from coreroll.audit import read_audit
    from coreroll.etcd.config import EtcdConfig

    config = EtcdConfig(endpoints=(clean_etcd,))
    actions = Actions(config, server.url, server.token, by="ops@bastion")
    run = Running(server.url)
    try:
        await run.until(lambda m: m.group("beta") is not None, what="groups")
        result = await actions.pause_group("beta")
        assert result.ok and result.message == "group beta paused"
        await run.until(lambda m: m.group("beta").paused, what="paused on screen")  # type: ignore[union-attr]
        assert (await actions.resume_group("beta")).ok
        await run.until(lambda m: not m.group("beta").paused, what="resumed")  # type: ignore[union-attr]

        wrong = await Actions(config, server.url, "not-the-token").pause_group("beta")
        assert not wrong.ok and "refused the admin token" in wrong.message
        missing = await actions.pause_group("nope")
        assert not missing.ok and "no group 'nope'" in missing.message

        refused = await actions.set_channel(["n1"], "gamma")
        assert not refused.ok
        assert refused.message == (
            "channel not switched: the server does not know channel 'gamma' (known: alpha, beta, stable)"
        )
        assert (await v3.get_prefix(COMMANDS_PREFIX.encode())).count == 0
        switched = await actions.set_channel(["n1"], "alpha")
        assert switched.ok
        (kv,) = list(await v3.get_prefix(command_prefix("n1").encode()))
        assert b'"set-channel"' in kv.value and b'"channel": "alpha"' in kv.value
        audit = [(r["action"], r["target"], r["result"]) for r in await read_audit(config)]
        assert audit == [
            ("pause", "group beta", "ok"),
            ("resume", "group beta", "ok"),
            ("pause", "group beta", "refused: HTTP 401"),
            ("pause", "group nope", "refused: HTTP 404"),
            ("set-channel", "node n1 -> channel alpha", "ok"),
        ]
    finally:
        await run.close()


async def test_a_hung_server_is_noticed_by_the_probe(tmp_path: Path) -> None:
    # SIGSTOP keeps the feed connection open but silent: only the health probe can tell
    process = runner.start_server_process(tmp_path / "hung")
    run = Running(process.url, probe_interval=0.5, timeout=1.0)
    try:
        await run.until(lambda m: m.group("beta") is not None, what="the snapshot")
        os.kill(process.pid, signal.SIGSTOP)
        try:
            waited = await run.until(
                lambda m: m.connections["server"].status == "down", deadline=5.0, what="down"
            )
            assert waited < 5.0
            assert run.model.connections["server"].detail.startswith("server stopped answering")
        finally:
            os.kill(process.pid, signal.SIGCONT)
        await run.until(lambda m: m.connections["server"].status == "connected", deadline=15.0, what="back")
        assert [e.message for e in run.model.activity if e.kind == "Connection"][
            -1
        ] == "server connected again"
    finally:
        await run.close()
        process.stop()


async def test_the_feed_client_limit_is_shown_with_its_reason(tmp_path: Path) -> None:
    server = start_server(tmp_path / "srv", max_feed_clients=0)
    run = Running(server.url, backoff=Backoff(base=0.5, cap=0.5), probe_interval=0.5)
    try:
        await run.until(lambda m: m.connections["server"].status == "down", what="the 503")
        reason = run.model.connections["server"].detail
        assert "HTTP 503" in reason and "--max-feed-clients" in reason, reason
    finally:
        await run.close()
        server.stop()
