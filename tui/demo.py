"""The demo's dashboard: `DashApp` over the demo's etcd and server, plus a line at the bottom that
says what the scenario is doing now.

    app = DemoApp(setup, phase_line=system.phase.line(), on_ready=demo.begin)
    system.on_phase = lambda phase: app.phase_changed(phase.line())   # from the demo's thread

`coreroll.commands.demo` builds the setup over the demo's system (the model, the sources, the
server and the nodes all run on the demo's simulated clock, so ages and times on screen agree),
starts and stops the system; this module is only the screen. Phase changes arrive from the demo's
thread as `PhaseChanged` messages (post_message is thread-safe); `DemoApp.phase_text` is the line
shown.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Static

from coreroll.watch.setup import DashboardSetup
from tui.app import DashApp
from tui.run import app_arguments
from widgets.key_bar import KeyBar


class PhaseChanged(Message):
    """The scenario moved on (posted from the demo's thread)."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class PhaseLine(Static):
    DEFAULT_CSS = """
    PhaseLine { height: auto; max-height: 2; padding: 0 1; background: $boost; color: $text; text-style: bold; }
    """


class DemoApp(DashApp):
    def __init__(
        self,
        setup: DashboardSetup,
        *,
        phase_line: str = "",
        on_ready: Callable[[], None] | None = None,
        watch_tty: bool = True,
    ) -> None:
        super().__init__(**app_arguments(setup), watch_tty=watch_tty)
        self.on_ready = on_ready
        self.phase_text = phase_line
        self.phases_shown: list[str] = []
        self._relaying = False

    def phase_changed(self, line: str) -> None:
        """The scenario's new phase line; callable from any thread."""
        if self._relaying:  # before mount there is no loop to post to; on_mount shows phase_text
            self.post_message(PhaseChanged(line))
        else:
            self.phase_text = line

    async def on_mount(self, event: events.Mount | None = None) -> None:  # Textual passes the event
        # Textual would also call DashApp.on_mount after this one (it walks the MRO); run it
        # here, first, and stop the walk, so the main screen exists before the line joins it.
        if event is not None:
            event.prevent_default()
        await super().on_mount()
        main = self.main_screen
        await main.mount(PhaseLine(self.phase_text, id="demo-phase"), before=main.query_one(KeyBar))
        self.phases_shown.append(self.phase_text)
        self._relaying = True
        if self.on_ready is not None:
            self.on_ready()

    def on_phase_changed(self, message: PhaseChanged) -> None:
        self.phase_text = message.line
        self.phases_shown.append(self.phase_text)
        try:
            self.main_screen.query_one("#demo-phase", PhaseLine).update(self.phase_text)
        except (LookupError, NoMatches):  # the main screen is not mounted (yet / any more)
            pass
