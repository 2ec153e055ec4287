"""Helpers for the dashboard tests: the screen as plain text, and waiting on a condition."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.app import App


def screen_text(app: App) -> str:
    """What the terminal shows right now, as plain text (no colours)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
        record=True, legacy_windows=False, safe_box=False,
    )  # fmt: skip
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:  # noqa: ASYNC109
    """Poll `condition` every 20 ms until it is truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_for_text(app: App, text: str, timeout: float = 5.0, present: bool = True) -> str:  # noqa: ASYNC109
    """Wait until `text` is (or is no longer) on screen; returns the screen."""
    seen = ""

    def check() -> bool:
        nonlocal seen
        seen = screen_text(app)
        return (text in seen) == present

    try:
        await wait_for(check, timeout, f"{text!r} {'on' if present else 'off'} screen")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- screen ---\n{seen}") from None
    return seen
