"""`--read-only` is enforced in the action layer, not only by hiding keys: the dashboard's own
wiring (coreroll.commands.dashboard.wiring.dashboard_setup from the parsed flags, then tui.run.build_app) yields an Actions that refuses every mutating
method, found by introspection so a method added later is covered too; nothing reaches etcd or the
server, not even an audit record."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import semaphore_key
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings
from coreroll.watch.actions import Actions, ReadOnlyError
from tests.faults.counts import check, record

# Methods of Actions that only read (they may run in read-only mode).
READERS = {"server_channels"}
ARGS: dict[str, tuple[Any, ...]] = {
    "check": (["n1"],),
    "set_channel": (["n1"], "beta"),
    "unlock": ("", "n1"),
    "set_max": ("", 5),
    "pause_group": ("stable",),
    "resume_group": ("stable",),
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server_in_thread(ServerSettings(data_dir=tmp_path / "data")) as running:
        yield running


def mutating_methods() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(Actions, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in READERS
    ]


def test_every_mutating_action_is_known() -> None:
    assert set(mutating_methods()) == set(ARGS), "a new action: add it to ARGS so read-only is tested on it"


def dashboard_actions(etcd: str, server: RunningServer, read_only: bool) -> Actions:
    """The Actions the dashboard builds from its command line."""
    import argparse

    from coreroll.commands.dash import add_arguments

    pytest.importorskip("textual")
    from coreroll.commands.dashboard.wiring import dashboard_setup
    from tui.run import build_app

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--etcd", etcd, "--server", server.url, f"--token={server.token}"]
    args = parser.parse_args([*argv, "--read-only"] if read_only else argv)
    app = build_app(dashboard_setup(args))
    actions = next((v for v in vars(app).values() if isinstance(v, Actions)), None)
    assert actions is not None, "the dashboard app holds no Actions"
    return actions


async def test_read_only_dashboard_refuses_every_action(clean_etcd: str, server: RunningServer) -> None:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    http = httpx.AsyncClient(base_url=server.url, timeout=10)
    try:
        key = semaphore_key("").encode()
        await client.put(key, b'{"semaphore":0,"max":1,"holders":["n1"]}')
        before = [(kv.key, kv.value) for kv in await client.get_all()]
        groups_before = (await http.get("/api/v1/groups")).json()["groups"]

        actions = dashboard_actions(clean_etcd, server, read_only=True)
        assert actions.read_only
        for name in mutating_methods():
            with pytest.raises(ReadOnlyError, match="read-only"):
                await getattr(actions, name)(*ARGS[name])
            record("read_only_actions_refused", suite="security")

        after = [(kv.key, kv.value) for kv in await client.get_all()]
        written = [repr(kv) for kv in after if kv not in before]
        assert check("read_only_wrote_nothing", written, suite="security") == []  # no command, lock or audit
        assert after == before
        assert (await http.get("/api/v1/groups")).json()["groups"] == groups_before

        # the same wiring without --read-only does act (so the refusals above were the guard)
        writable = dashboard_actions(clean_etcd, server, read_only=False)
        assert (await writable.unlock("", "n1")).ok
        assert (await writable.pause_group("stable")).ok
        paused = (await http.get("/api/v1/groups/stable")).json()
        assert paused["policy"]["updates_enabled"] is False
    finally:
        await http.aclose()
        await client.close()
