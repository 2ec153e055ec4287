"""The dashboard against a real etcd and a real update server, with hand-written node status in
etcd: every key does what it says, visible on screen AND in etcd / server state; read-only refuses;
sources going away are shown in place and the state is exactly the source's when they return."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.locks.keys import semaphore_key
from coreroll.wire.keys import AUDIT_PREFIX, status_key
from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tests.tui.live import (
    CutProxy,
    Etcd,
    admin_post,
    commands_for,
    make_live_app,
    pick_channel,
    register_instance,
    server_groups,
    server_running,
)
from tui.app import DashApp
from tui.sample import STATUS_KEY
from widgets.dialogs import ConfirmDialog, NumberDialog
from widgets.node_table import NodeTable

A = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
B = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
C = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with server_running(tmp_path / "server") as running:
        yield running


@pytest.fixture
def fleet(clean_etcd: str, server: tuple[str, str]) -> Etcd:
    etcd = Etcd(clean_etcd)
    etcd.node(A, hostname="alpha-1", channel="stable", holds_lock=True)
    etcd.node(B, hostname="beta-2", channel="beta", status="UPDATE_STATUS_DOWNLOADING", progress=0.4)
    etcd.node(C, hostname="gamma-3", channel="stable", alive=False)
    etcd.put(semaphore_key(""), json.dumps({"semaphore": 0, "max": 1, "holders": [A]}))
    register_instance(server[0], A, track="stable")
    return etcd


def table(app: DashApp) -> NodeTable:
    return app.main_screen.query_one("#nodes", NodeTable)


async def ready(app: DashApp, pilot: object, rows: int = 3) -> None:
    await wait_for(lambda: len(app.model.rows) >= rows, 10, f"{rows} rows from the sources")
    await wait_for_text(app, "gamma-3", 10)


async def select(app: DashApp, mid: str) -> None:
    await wait_for(lambda: table(app).move_cursor_to_key(mid), 5, f"row {mid}")


async def test_check_queues_a_command_per_marked_node_and_audits_it(
    fleet: Etcd, server: tuple[str, str]
) -> None:
    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await select(app, A)
        await pilot.press("space")
        await select(app, B)
        await pilot.press("space", "c")
        await wait_for(lambda: commands_for(fleet, A) and commands_for(fleet, B), 10, "commands in etcd")
        assert commands_for(fleet, A)[0]["action"] == "check"
        assert commands_for(fleet, C) == []
        await wait_for_text(app, "Intervention check", 10)  # the audit record, back through the watch
        assert fleet.prefix(AUDIT_PREFIX)
        await select(app, A)
        await pilot.press("enter")
        await wait_for_text(app, "check", 5)
        text = await wait_for_text(app, "pending commands")
        assert "  none" not in text.split("pending commands")[1].split("history")[0]


async def test_switch_channel_confirms_with_cancel_focused(fleet: Etcd, server: tuple[str, str]) -> None:
    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await wait_for(lambda: app.model.channels(), 10, "channels from the server")
        await select(app, A)
        await pick_channel(app, pilot, "beta")
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")  # Enter on the focused Cancel: nothing happens
        await wait_for(lambda: not isinstance(app.screen, ConfirmDialog), 5, "dialog closed")
        await pick_channel(app, pilot, "beta")
        await pilot.press("y")
        # The audit record is written after the command: once it is there, the switch is done.
        await wait_for(lambda: fleet.prefix(AUDIT_PREFIX), 10, "the switch's audit record")
        # One command: the one confirmed with y, none from the Cancel before it.
        [command] = commands_for(fleet, A)
        assert command["action"] == "set-channel" and command["args"] == {"channel": "beta"}


async def test_switch_to_a_channel_the_server_does_not_know_is_refused(
    fleet: Etcd, server: tuple[str, str]
) -> None:
    from coreroll.watch.updates import FeedEvent

    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await wait_for(lambda: app.model.channels(), 10, "channels from the server")
        # a channel the dashboard believes in but the server does not have (deleted meanwhile)
        app.buffer.put(FeedEvent("channel", None, {"name": "zz-gone", "version": "1.0.0"}))
        await wait_for(lambda: app.model.known_channel("zz-gone"), 5, "phantom channel")
        await select(app, A)
        await pick_channel(app, pilot, "zz-gone")
        await pilot.press("y")
        refusal = "does not know channel 'zz-gone'"
        await wait_for(lambda: any(refusal in e.message for e in app.model.activity), 10, "the refusal")
        await wait_for_text(app, "Action switch alpha-1 to zz-gone", 5)  # in the event log
        assert commands_for(fleet, A) == []  # refused before anything is written


async def test_unlock_selected_node_and_a_holder_that_released_meanwhile(
    fleet: Etcd, server: tuple[str, str]
) -> None:
    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await wait_for(lambda: table(app).rows and app.model.get(A).holds_lock, 10, "A holds the lock")
        await select(app, A)
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
        # the holder releases by itself while the operator reads the dialog
        fleet.put(semaphore_key(""), json.dumps({"semaphore": 1, "max": 1, "holders": None}))
        await wait_for(lambda: not app.model.get(A).holds_lock, 10, "release seen")
        await pilot.press("y")
        text = await wait_for_text(app, "released meanwhile", 10)
        assert "Traceback" not in text
        # now it holds again, and the unlock goes through
        fleet.put(semaphore_key(""), json.dumps({"semaphore": 0, "max": 1, "holders": [A]}))
        await wait_for(lambda: app.model.get(A).holds_lock, 10, "A holds again")
        await pilot.press("r")  # the lock panel: select the holder there
        panel = app.main_screen.query_one("#locks")
        await wait_for(lambda: panel.selected_group() is not None, 5, "lock panel selection")
        await pilot.press("down")
        assert panel.selected_holder() is not None and panel.selected_holder()[1] == A
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
        await pilot.press("y")
        await wait_for(lambda: not json.loads(fleet.get(semaphore_key(""))).get("holders"), 10, "unlocked")
        await wait_for_text(app, "1/1 free", 10)


async def test_set_max_from_the_lock_panel(fleet: Etcd, server: tuple[str, str]) -> None:
    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await wait_for_text(app, "0/1 free", 10)
        await pilot.press("r", "m")
        await wait_for(lambda: isinstance(app.screen, NumberDialog), 5, "number dialog")
        await pilot.press("end", "backspace", "backspace", "x", "enter")
        await wait_for_text(app, "not a whole number", 5)
        await pilot.press("backspace", *"9223372036854775808", "enter")  # beyond what locksmith reads
        await wait_for_text(app, "must be at most 9223372036854775807", 5)
        await pilot.press(*["backspace"] * 19, "3", "enter")
        await wait_for(lambda: json.loads(fleet.get(semaphore_key("")))["max"] == 3, 10, "max 3 in etcd")
        await wait_for_text(app, "2/3 free", 10)


async def test_pause_and_resume_the_selected_nodes_server_group(fleet: Etcd, server: tuple[str, str]) -> None:
    url, token = server
    app = make_live_app(fleet.endpoint, url, token)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await wait_for(lambda: app.model.get(A).group is not None, 10, "A's server group")
        group = app.model.get(A).group
        await select(app, A)
        await pilot.press("p")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
        assert "Pause" in screen_text(app)
        await pilot.press("y")
        await wait_for(lambda: server_groups(url)[group]["policy"]["updates_enabled"] is False, 10, "paused")
        await wait_for(lambda: app.model.group(group).paused, 10, "pause seen via the feed")
        await wait_for_text(app, f"group {group} PAUSED", 5)
        await pilot.press("p")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
        assert "Resume" in screen_text(app)
        await pilot.press("y")
        await wait_for(lambda: server_groups(url)[group]["policy"]["updates_enabled"] is True, 10, "resumed")
        await wait_for_text(app, f"group {group} PAUSED", 10, present=False)


async def test_read_only_refuses_every_intervention(fleet: Etcd, server: tuple[str, str]) -> None:
    url, token = server
    app = make_live_app(fleet.endpoint, url, token, read_only=True)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await ready(app, pilot)
        await select(app, A)
        # f (freeze, allowed read-only) last: keys are handled in order, so once it shows, the
        # mutating keys before it have had their effect, if any.
        await pilot.press("c", "s", "u", "m", "p", "r", "u", "m", "f")
        await wait_for_text(app, "[FROZEN]", 5)
        assert isinstance(app.screen, type(app.main_screen))  # no dialog opened
        assert commands_for(fleet, A) == []
        assert fleet.prefix(AUDIT_PREFIX) == {}
        assert json.loads(fleet.get(semaphore_key(""))) == {"semaphore": 0, "max": 1, "holders": [A]}
        assert all(g["policy"]["updates_enabled"] for g in server_groups(url).values())
        assert "[R]" in screen_text(app)
    # and the action layer refuses on its own, whatever the UI does
    from coreroll.watch.actions import ReadOnlyError

    with pytest.raises(ReadOnlyError):
        await app.actions.check([A])


async def test_corrupt_status_shows_unreadable_naming_the_key(fleet: Etcd, server: tuple[str, str]) -> None:
    fleet.put(STATUS_KEY.format("d4d4"), b'{"machine_id": "d4d4", "channel": ')
    app = make_live_app(fleet.endpoint, server[0], server[1])
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(app, pilot, rows=4)
        text = await wait_for_text(app, "UNREADABLE " + status_key("d4d4"), 10)
        assert "alpha-1" in text and "beta-2" in text


async def test_etcd_stopped_then_back_shows_exactly_etcds_state(tmp_path: Path) -> None:
    with EmbeddedEtcd(data_dir=tmp_path / "etcd") as own:
        etcd = Etcd(own.endpoint)
        etcd.node(A, hostname="alpha-1")
        etcd.node(B, hostname="beta-2")
        app = make_live_app(own.endpoint, None)
        async with app.run_test(size=(160, 48)):
            await wait_for_text(app, "beta-2", 10)
            own.kill()
            text = await wait_for_text(app, "etcd: DOWN", 5)
            assert "alpha-1" in text and "beta-2" in text  # last known state kept...
            assert table(app).stale and ">~" in text  # ...and marked stale
            own.start()
            # changes made before the dashboard is back in sync
            etcd.delete(STATUS_KEY.format(B))
            etcd.node(A, hostname="alpha-renamed")
            etcd.node(C, hostname="gamma-new")
            text = await wait_for_text(app, "etcd: ok", 15)
            await wait_for_text(app, "gamma-new", 10)
            await wait_for_text(app, "alpha-renamed", 10)
            text = await wait_for_text(app, "beta-2", 10, present=False)
            assert not table(app).stale
            # B's status is gone but its alive key (a lease) is still there: a row with no report
            assert {r.machine_id for r in table(app).rows} == {A, B, C}
            assert app.model.get(B).hostname is None and app.model.get(B).online


async def test_server_feed_cut_then_back_shows_the_servers_state(
    fleet: Etcd, server: tuple[str, str]
) -> None:
    url, token = server
    proxy = CutProxy(url)
    try:
        app = make_live_app(fleet.endpoint, proxy.url, token)
        async with app.run_test(size=(160, 48)) as pilot:
            await ready(app, pilot)
            await wait_for(lambda: app.model.group("stable") is not None, 10, "groups from the feed")
            assert not app.model.group("stable").paused
            proxy.cut()
            await wait_for_text(app, "server: DOWN", 5)
            assert "alpha-1" in screen_text(app)
            admin_post(url, token, "/api/v1/groups/stable/pause")  # while the dashboard cannot see
            proxy.restore()
            await wait_for_text(app, "server: ok", 15)
            await wait_for(lambda: app.model.group("stable").paused, 10, "pause picked up after the gap")
    finally:
        proxy.close()
