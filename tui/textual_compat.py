"""Every private Textual name the dashboard relies on, in one place.

Textual has no public way to (a) update a screen at once instead of on its next 60 Hz frame,
(b) render the screen to text, or (c) observe the moment a screen update is written. Each is
wrapped here; nothing else in tui/, widgets/, tests/ or bench/ may name a private Textual
attribute (tests/tui/test_textual_compat.py checks that, and that every name in `HOOKED` still
exists in the installed Textual, so an upgrade that renames one fails loudly instead of silently
slowing keys down).
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

from rich.console import Console
from textual import events
from textual.app import App
from textual.screen import Screen

HOOKED: dict[str, tuple[type, tuple[str, ...]]] = {
    "screen update": (
        Screen,
        (
            "_on_idle",
            "_on_timer_update",
            "_layout_required",
            "_scroll_required",
            "_repaint_required",
            "_dirty_widgets",
            "_compositor",
        ),
    ),
    "app": (App, ("_batch_count", "_display", "_background_screens")),
}
"""(class, attribute names) hooked here, by purpose; attributes set in __init__ are checked on an
instance (tests/tui/test_textual_compat.py)."""


class PromptScreen(Screen[None]):
    """A screen that updates at once when `update_now_wanted()` says so.

    Textual paints a dirty screen from a 60 Hz timer that, once paused and resumed, skips to the
    frame after next: a key pressed just after a paint waited 17-33 ms for its update (more than
    half the 50 ms keypress budget). Here a dirty screen is updated at once when the last update
    is at least one frame old or `update_now_wanted()` (a key was just pressed: its effect may take
    two updates, e.g. the filter line, then the table), else exactly when that frame is up.
    """

    FRAME = 1 / 60  # the fastest this screen updates (Textual's own frame limit)
    _updated_at: float = 0.0
    _frame_due: asyncio.TimerHandle | None = None

    def update_now_wanted(self) -> bool:
        return False

    def _needs_update(self) -> bool:
        return bool(
            not self.app._batch_count
            and self.is_current
            and (
                self._layout_required
                or self._scroll_required
                or self._repaint_required
                or self._dirty_widgets
            )
        )

    async def _on_idle(self, event: events.Idle) -> None:
        if self._needs_update():
            wait = self._updated_at + self.FRAME - time.monotonic()
            if wait <= 0 or self.update_now_wanted():
                self._on_timer_update()
            elif self._frame_due is None:
                self._frame_due = asyncio.get_running_loop().call_later(wait, self._frame_up)
        await super()._on_idle(event)

    def _frame_up(self) -> None:
        self._frame_due = None
        if self._needs_update() and self.is_attached:
            self._on_timer_update()

    def _on_timer_update(self) -> None:
        if self._frame_due is not None:  # this update is the one that frame would have made
            self._frame_due.cancel()
            self._frame_due = None
        self._updated_at = time.monotonic()
        super()._on_timer_update()


def screen_text(app: App[Any]) -> str:
    """What the terminal shows right now, as plain text (no colours): what `export_screenshot`
    renders, as text instead of SVG."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
        record=True, legacy_windows=False, safe_box=False,
    )  # fmt: skip
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


class DisplayHookApp(App[Any]):
    """Calls `on_display()` right after every screen update is written (benchmarks time keys and
    changes to that moment)."""

    def on_display(self) -> None:
        pass

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        super()._display(screen, renderable)
        self.on_display()
