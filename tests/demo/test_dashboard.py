"""`coreroll demo`'s dashboard, driven with Pilot until each scenario's defining moment is on screen.

The whole system runs for real in the demo's thread (etcd, the server on SQLite, 8 agents on a
fast clock); the app under test is `tui.demo.DemoApp` as `coreroll demo` wires it (`coreroll.commands.dashboard.demo`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from coreroll.commands.dashboard.demo import demo_app
from coreroll.demo.system import INITIAL_VERSION, NEW_VERSION, DemoOptions
from coreroll.demo.threaded import DemoThread
from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tui.demo import DemoApp
from widgets.lock_panel import LockPanel

pytestmark = pytest.mark.slow
NODES = 8
SIZE = (160, 48)


@contextmanager
def running_demo(scenario: str) -> Iterator[DemoThread]:
    demo = DemoThread(
        DemoOptions(nodes=NODES, time_factor=150, scenario=scenario, report_interval=1.0, soak=60)
    )
    system = demo.start(run=False)
    try:
        yield demo
    finally:
        demo.stop()
    assert demo.error is None, demo.error
    assert system.base_dir is not None and not system.base_dir.exists()


@asynccontextmanager
async def dashboard(demo: DemoThread) -> AsyncIterator[tuple[DemoApp, object]]:
    """The demo's app; the scenario's script starts once it is on screen, as in `coreroll demo`."""
    app = demo_app(demo.system, on_ready=demo.begin, watch_tty=False)
    assert isinstance(app, DemoApp)
    async with app.run_test(size=SIZE) as pilot:
        yield app, pilot


def rows_on(version: str, text: str) -> list[str]:
    return re.findall(rf"node-\d{{4}}\s+\w+\s+{re.escape(version)}\s+USR-\w", text)


async def test_rollout_ends_with_every_node_on_the_new_version() -> None:
    with running_demo("rollout") as demo:
        async with dashboard(demo) as (app, _pilot):
            await wait_for(
                lambda: len(rows_on(NEW_VERSION, screen_text(app))) == NODES, 60, "all rows on new"
            )
            text = await wait_for_text(app, f"rollout complete: all {NODES} nodes run {NEW_VERSION}", 30)
            for channel in ("alpha", "beta", "stable"):
                assert re.search(rf"{channel}\s+{re.escape(NEW_VERSION)}\s+█+ 100%", text), text
            assert rows_on(INITIAL_VERSION, text) == []
            # the bottom line followed the scenario step by step
            shown = "\n".join(app.phases_shown)
            steps = ["published to alpha", "promoted to beta", "promoted to stable", "rollout complete"]
            assert all(step in shown for step in steps), shown
            assert [shown.index(step) for step in steps] == sorted(shown.index(step) for step in steps)


async def test_bad_release_shows_the_rollback_and_the_halted_group() -> None:
    with running_demo("bad-release") as demo:
        async with dashboard(demo) as (app, _pilot):
            text = await wait_for_text(app, "safe mode halted alpha", timeout=60)
            # the node that rolled back: booted the old version again, the new one in the other USR,
            # and the server's instance status is Error
            rollback = re.compile(
                rf"node-\d{{4}}\s+alpha\s+{re.escape(INITIAL_VERSION)}\s+USR-A\s+{re.escape(NEW_VERSION)}.*Error"
            )
            await wait_for(lambda: rollback.search(screen_text(app)), 20, "a rollback row")
            text = await wait_for_text(app, "RolloutFailed", timeout=20)
            assert "group alpha halted" in text
            assert "InstanceUpdateFailed" in text
            # nothing beyond alpha got the bad release
            assert all(" alpha " in row for row in rows_on(NEW_VERSION, text)), text


async def test_stuck_lock_is_flagged_freed_with_u_and_the_rollout_continues() -> None:
    with running_demo("stuck-lock") as demo:
        system = demo.system
        async with dashboard(demo) as (app, pilot):
            victim = next(n for n in system.nodes if n.plan.die_rebooting)
            name = system.name_of(victim)
            # other holders are offline for a moment while they reboot: wait for the dead one
            stale = re.compile(rf"{name}\s+\S+\s+STALE: offline")
            await wait_for(lambda: stale.search(screen_text(app)), 60, f"{name} flagged stale")
            await wait_for_text(app, f"{name} took the db reboot lock and died", timeout=10)
            panel = app.main_screen.query_one("#locks", LockPanel)
            await pilot.press("r")  # focus the lock panel
            for _ in range(panel.option_count):
                selected = panel.selected_holder()
                if selected is not None and selected[1] == victim.machine_id:
                    break
                await pilot.press("down")
            assert panel.selected_holder() is not None
            assert panel.selected_holder()[1] == victim.machine_id  # type: ignore[index]
            await pilot.press("u")
            await wait_for_text(app, "Release reboot lock", timeout=5)  # the confirmation, Cancel focused
            await pilot.press("y")
            await wait_for(lambda: not stale.search(screen_text(app)), 10, f"{name} gone from the lock panel")
            text = await wait_for_text(app, "rollout complete", timeout=60)
            assert any("lock was released; the rollout continues" in line for line in app.phases_shown)
            # the rollout went on after the unlock: every node but the dead one on the new version
            await wait_for(
                lambda: len(rows_on(NEW_VERSION, screen_text(app))) == NODES - 1, 10, "7 rows on new"
            )
            text = screen_text(app)
            assert "Audit" in text or "unlock" in text  # the intervention is in the event log
