"""Snapshot tests (pytest-textual-snapshot) of the main screen with a fixed sample fleet and a frozen
clock, at the SSH minimum 80x24 and at 160x48. `pytest --snapshot-update` accepts new pictures."""

from __future__ import annotations

import pytest

from coreroll.watch.model import FleetModel
from tui.app import DashApp
from tui.sample import NOW, sample_updates


def fixed_app(read_only: bool = False) -> DashApp:
    app = DashApp(FleetModel(clock=lambda: NOW), clock=lambda: NOW, watch_tty=False, read_only=read_only)
    for update in sample_updates(40):
        app.buffer.put(update)
    return app


async def settle(pilot: object) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    while app.repaints == 0 or app.loading or len(app.buffer):
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause(0.1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare: object, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size, run_before=settle)  # type: ignore[operator]


def test_main_screen_read_only_80x24(snap_compare: object) -> None:
    assert snap_compare(fixed_app(read_only=True), terminal_size=(80, 24), run_before=settle)  # type: ignore[operator]
