"""Screenshots of the dashboard over a LIVE system, written as SVG into screenshots/.

    .venv/bin/python bench/screenshots.py [--out screenshots] [--nodes 24] [--time-factor 60]

Brings up the demo's system (`coreroll.demo.threaded.DemoThread`, scenario `stuck-lock`): an
embedded etcd, the update server on SQLite with a published release, and a fleet of real node
agents that roll the release out under the reboot locks until a `db` node dies holding its lock.
Then it runs the dashboard headless against that etcd and server (the same wiring as
`coreroll dash`) and saves:

- main-160x48.svg, main-80x24.svg: the main screen, wide and at the SSH minimum;
- node-detail.svg: a node's detail (partitions as cgpt shows them, status, server history);
- lock-panel-stale.svg: the lock panel focused on the stale holder (the dead db node);
- read-only.svg: the same dashboard with --read-only ([R], no intervention keys);
- palette.svg, palette-go-to-node.svg: the command palette (ctrl+p) as it opens, and its
  "go to node" with a few letters typed.

`--only palette,palette-go-to-node` writes only those (names without .svg) and skips waiting for the
rest (the stuck lock takes minutes).

Says what it waits for; exits 1 with the reason when something does not show up in time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.command import CommandPalette  # noqa: E402

from coreroll.commands.dashboard.wiring import history_loader, make_actions  # noqa: E402
from coreroll.demo.system import DemoOptions, DemoSystem  # noqa: E402
from coreroll.demo.threaded import DemoThread  # noqa: E402
from coreroll.watch.etcd_source import EtcdSource  # noqa: E402
from coreroll.watch.feed_source import FeedSource  # noqa: E402
from coreroll.watch.model import FleetModel  # noqa: E402
from coreroll.watch.updates import UpdateBuffer  # noqa: E402
from tui.app import DashApp  # noqa: E402
from widgets.lock_panel import LockPanel  # noqa: E402


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def dashboard(system: DemoSystem, read_only: bool = False) -> DashApp:
    clock = system.clock.now  # the fleet and server run on the demo's simulated clock
    buffer = UpdateBuffer()
    return DashApp(
        FleetModel(clock=clock),
        buffer=buffer,
        sources=[
            EtcdSource(system.etcd_config, buffer.put, clock=clock),
            FeedSource(system.server_url, buffer.put, clock=clock),
        ],
        actions=make_actions(system.etcd_config, system.server_url, system.token, read_only),
        read_only=read_only,
        cluster=system.etcd_endpoint,
        history=history_loader(system.server_url),
        clock=clock,
        watch_tty=False,
    )


async def until(condition: Callable[[], Any], what: str, timeout: float) -> None:  # noqa: ASYNC109
    say(f"waiting for {what} (up to {timeout:g} s) ...")
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what}")
        await asyncio.sleep(0.2)


ONLY: set[str] = set()  # --only: the pictures to write (empty: all)


def save(app: DashApp, out: Path, name: str) -> None:
    if ONLY and name.removesuffix(".svg") not in ONLY:
        return
    path = out / name
    path.write_text(app.export_screenshot(title=f"coreroll - {name.removesuffix('.svg')}"))
    say(f"wrote {path}")


async def shoot(system: DemoSystem, out: Path, nodes: int) -> None:
    app = dashboard(system)
    async with app.run_test(size=(160, 48)) as pilot:
        model = app.model
        await until(lambda: len(model.rows) >= nodes and model.channels(), f"{nodes} nodes and channels", 60)
        await until(
            lambda: (
                any(r.state in ("updating", "need-reboot") for r in model.rows.values())
                or any(g.holders for g in model.lock_groups())
            ),
            "the rollout to be under way",
            120,
        )
        await pilot.pause(1.0)
        save(app, out, "main-160x48.svg")
        await shoot_palette(app, pilot, out)
        if ONLY and ONLY <= {"palette", "palette-go-to-node"}:
            return
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.5)
        save(app, out, "main-80x24.svg")
        await pilot.resize_terminal(160, 48)
        await until(
            lambda: system.phase.name == "stuck" and model.stale_holders(),
            "the db node to die holding its reboot lock (a stale holder)",
            400,
        )
        await pilot.pause(2.0)
        await pilot.pause(0.5)
        await pilot.press("r")
        panel = app.main_screen.query_one("#locks", LockPanel)
        stale = {h.machine_id for _, h in model.stale_holders()}
        for _ in range(panel.option_count):
            held = panel.selected_holder()
            if held is not None and held[1] in stale:
                break
            await pilot.press("down")
        await pilot.pause(0.3)
        save(app, out, "lock-panel-stale.svg")
        # a node that has been through an update has history on the server
        await pilot.press("t")
        updated = [r for r in model.rows.values() if r.other_version and r.server_status]
        target = (updated or list(model.rows.values()))[0]
        app.main_screen.table.move_cursor_to_key(target.machine_id)
        await pilot.press("enter")
        await pilot.pause(1.5)
        save(app, out, "node-detail.svg")
    app = dashboard(system, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(lambda: len(app.model.rows) >= nodes, "the read-only dashboard to fill", 60)
        await pilot.pause(1.0)
        save(app, out, "read-only.svg")


async def shoot_palette(app: DashApp, pilot: Any, out: Path) -> None:
    await pilot.press("ctrl+p")
    await until(lambda: CommandPalette.is_open(app), "the command palette", 10)
    await pilot.pause(0.5)
    save(app, out, "palette.svg")
    await pilot.press(*"go to node", "enter")
    await until(lambda: CommandPalette.is_open(app), "the go-to-node palette", 10)
    await pilot.press(*"nd1")
    await pilot.pause(0.8)
    save(app, out, "palette-go-to-node.svg")
    await pilot.press("escape")
    await until(lambda: not CommandPalette.is_open(app), "the palette to close", 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--nodes", type=int, default=24)
    parser.add_argument("--time-factor", type=float, default=60.0)
    parser.add_argument("--only", default="", help="comma-separated picture names (default: all)")
    args = parser.parse_args()
    ONLY.update(name.strip() for name in args.only.split(",") if name.strip())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = DemoOptions(nodes=args.nodes, time_factor=args.time_factor, scenario="stuck-lock")
    demo = DemoThread(options, on_progress=say)
    say(f"starting the live system: etcd, server, {args.nodes} node agents (stuck-lock scenario) ...")
    demo.start(run=True)
    try:
        asyncio.run(shoot(demo.system, out, args.nodes))
    finally:
        say("stopping the live system ...")
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
