"""`coreroll demo` with its dashboard: the demo's system wired to `tui.demo.DemoApp`.

    demo = DemoThread(options)               # coreroll.demo.threaded: the system on its own loop
    system = demo.start(run=False)
    app = demo_app(system, on_ready=demo.begin)   # the script starts once the screen is up
    app.run(); demo.stop()

`run_demo(options, mouse=False) -> int` is what `coreroll demo` calls: it starts the system
(printing what it waits for), opens the dashboard and, on exit, stops everything it started.
The model, the sources, the server and the nodes all run on the demo's simulated clock, so ages
and times on screen agree; the system's phase changes are relayed into the app.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from coreroll.commands.dashboard.ui import ui_module
from coreroll.commands.dashboard.wiring import history_loader, make_actions
from coreroll.demo.system import DemoOptions, DemoSystem
from coreroll.demo.threaded import DemoThread
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.setup import DashboardSetup
from coreroll.watch.updates import UpdateBuffer


def demo_setup(system: DemoSystem, refresh_interval: float = 0.2) -> DashboardSetup:
    """The dashboard over the demo's etcd and server, on the demo's clock."""
    clock = system.clock.now
    buffer = UpdateBuffer()
    return DashboardSetup(
        FleetModel(clock=clock),
        buffer,
        [
            EtcdSource(system.etcd_config, buffer.put, clock=clock),
            FeedSource(system.server_url, buffer.put, clock=clock, token=system.token),
        ],
        actions=make_actions(system.etcd_config, system.server_url, system.token, False),
        cluster=f"demo {system.options.scenario} x{system.options.time_factor:g} ({system.etcd_endpoint})",
        refresh_interval=refresh_interval,
        history=history_loader(system.server_url),
        clock=clock,
    )


def demo_app(
    system: DemoSystem, *, on_ready: Callable[[], None] | None = None, watch_tty: bool = True
) -> Any:
    """`tui.demo.DemoApp` over `system`, following its phases."""
    app = ui_module("demo").DemoApp(
        demo_setup(system), phase_line=system.phase.line(), on_ready=on_ready, watch_tty=watch_tty
    )
    system.on_phase = lambda phase: app.phase_changed(phase.line())
    return app


def _progress(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal went away (SSH dropped): cleaning up matters more
        pass


def _exit_soon(app: Any) -> None:
    loop = app.event_loop
    if loop is not None:
        loop.call_soon_threadsafe(app.exit, 0)


class _Interrupted(Exception):
    """SIGTERM / SIGHUP before the dashboard was up."""


def _interrupt(signum: int, _frame: object) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def run_demo(options: DemoOptions, *, mouse: bool = False) -> int:
    # etcd runs in its own session: whatever ends us, the finally below must stop it
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    demo = DemoThread(options, on_progress=_progress)
    try:
        try:
            system = demo.start(run=False)
        except _Interrupted as exc:
            _progress(f"coreroll demo: {exc} while starting")
            return 1
        except Exception as exc:
            _progress(f"coreroll demo: could not start: {exc}")
            return 1
        _progress("opening the dashboard (q quits, ? lists the keys) ...")
        app = demo_app(system, on_ready=demo.begin)
        # SIGTERM ends the app like `q` does (the app itself handles SIGHUP)
        signal.signal(signal.SIGTERM, lambda *_: _exit_soon(app))
        return int(app.run(mouse=mouse) or 0)
    finally:
        _progress("stopping the fleet, the server and etcd ...")
        demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if options.keep is not None:
            _progress(f"state kept in {demo.system.base_dir}")
    return 1
