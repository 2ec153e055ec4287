"""The demo's dashboard: `DashApp` over the demo's etcd and server, plus a line at the bottom that
says what the scenario is doing now.

    demo = DemoThread(options)        # coreroll.demo.threaded: the system on its own loop
    system = demo.start(run=False)
    app = DemoApp(system, on_ready=demo.begin)   # the script starts once the screen is up;
                                      # the system's phase changes are relayed into the app
    app.run(); demo.stop()

`run_demo(options, mouse=False) -> int` is what `coreroll demo` calls: it starts the system
(printing what it waits for), opens the dashboard and, on exit, stops everything it started.
Phase changes arrive from the demo's thread as `PhaseChanged` messages (post_message is
thread-safe); `DemoApp.phase_text` is the line shown. The model, the sources, the server and the
nodes all run on the demo's simulated clock, so ages and times on screen agree.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

from textual import events
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Static

from coreroll.demo.system import DemoOptions, DemoSystem, Phase
from coreroll.demo.threaded import DemoThread
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from tui.app import DashApp
from tui.run import history_loader, make_actions
from widgets.key_bar import KeyBar


class PhaseChanged(Message):
    """The scenario moved on (posted from the demo's thread)."""

    def __init__(self, phase: Phase) -> None:
        super().__init__()
        self.phase = phase


class PhaseLine(Static):
    DEFAULT_CSS = """
    PhaseLine { height: auto; max-height: 2; padding: 0 1; background: $boost; color: $text; text-style: bold; }
    """


class DemoApp(DashApp):
    def __init__(
        self,
        system: DemoSystem,
        *,
        on_ready: Callable[[], None] | None = None,
        refresh_interval: float = 0.2,
        watch_tty: bool = True,
    ) -> None:
        clock = system.clock.now
        buffer = UpdateBuffer()
        sources: list[Any] = [
            EtcdSource(system.etcd_config, buffer.put, clock=clock),
            FeedSource(system.server_url, buffer.put, clock=clock, token=system.token),
        ]
        super().__init__(
            FleetModel(clock=clock),
            buffer=buffer,
            sources=sources,
            actions=make_actions(system.etcd_config, system.server_url, system.token, False),
            cluster=f"demo {system.options.scenario} x{system.options.time_factor:g} ({system.etcd_endpoint})",
            refresh_interval=refresh_interval,
            history=history_loader(system.server_url),
            clock=clock,
            watch_tty=watch_tty,
            sources_configured=("etcd", "server"),
        )
        self.system = system
        self.on_ready = on_ready
        self.phase_text = system.phase.line()
        self.phases_shown: list[str] = []
        self._relaying = False
        system.on_phase = self._relay

    def _relay(self, phase: Phase) -> None:
        if self._relaying:  # before mount there is no loop to post to; on_mount reads system.phase
            self.post_message(PhaseChanged(phase))

    async def on_mount(self, event: events.Mount | None = None) -> None:  # Textual passes the event
        # Textual would also call DashApp.on_mount after this one (it walks the MRO); run it
        # here, first, and stop the walk, so the main screen exists before the line joins it.
        if event is not None:
            event.prevent_default()
        await super().on_mount()
        main = self.main_screen
        self.phase_text = self.system.phase.line()
        await main.mount(PhaseLine(self.phase_text, id="demo-phase"), before=main.query_one(KeyBar))
        self.phases_shown.append(self.phase_text)
        self._relaying = True
        if self.on_ready is not None:
            self.on_ready()

    def on_phase_changed(self, message: PhaseChanged) -> None:
        self.phase_text = message.phase.line()
        self.phases_shown.append(self.phase_text)
        try:
            self.main_screen.query_one("#demo-phase", PhaseLine).update(self.phase_text)
        except (LookupError, NoMatches):  # the main screen is not mounted (yet / any more)
            pass


def _progress(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal went away (SSH dropped): cleaning up matters more
        pass


def _exit_soon(app: DemoApp) -> None:
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
        app = DemoApp(system, on_ready=demo.begin)
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
