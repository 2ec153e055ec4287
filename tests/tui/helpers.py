"""Helpers for the dashboard tests: the screen as plain text, and waiting on a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.app import App
from textual.command import CommandList, CommandPalette

from tui.textual_compat import screen_text

__all__ = ["screen_text", "wait_for", "wait_for_text"]


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


def palette_hits(app: App) -> list[str]:
    """The command palette's list as shown, each hit's text ([] when it is not open)."""
    if not CommandPalette.is_open(app):
        return []
    options = app.screen.query_one(CommandList)
    return [str(options.get_option_at_index(i).hit.text) for i in range(options.option_count)]  # type: ignore[attr-defined]
