"""j/k/g/G in every list, as in the node table: the lock panel, the event log, the channel picker,
the `?` screen and the node detail; remapped together by their `list.*` ids."""

from __future__ import annotations

import pytest
from textual.widget import Widget

from coreroll.watch import updates as u
from tests.tui.helpers import wait_for
from tests.tui.test_screen import RecordingActions, make_app
from tui.screens.detail import NodeDetailScreen
from widgets.dialogs import ChoiceDialog
from widgets.event_log import EventLog
from widgets.help import HelpScreen
from widgets.list_keys import NavOptionList, NavScroll
from widgets.lock_panel import LockPanel

pytestmark = pytest.mark.slow


async def scrolls_with_jkgG(pilot: object, view: Widget) -> None:
    await wait_for(lambda: view.max_scroll_y > 2, what=f"{view} to overflow")
    for key, where in (("G", view.max_scroll_y), ("k", view.max_scroll_y - 1), ("g", 0), ("j", 1)):
        await pilot.press(key)  # type: ignore[attr-defined]
        await wait_for(
            lambda where=where: round(view.scroll_y) == where, what=f"{key}: {view} at line {where}"
        )


async def test_every_list_answers_to_j_k_g_and_G() -> None:
    app = make_app(actions=RecordingActions())
    for n in range(80):
        app.buffer.put(u.Note(f"line {n}"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        panel = app.main_screen.query_one(LockPanel)
        await pilot.press("r")
        assert panel.has_focus and panel.highlighted == 0
        for key, where in (("j", 1), ("j", 2), ("k", 1), ("G", panel.option_count - 1), ("g", 0)):
            await pilot.press(key)
            assert panel.highlighted == where, key

        await pilot.press("l")
        await scrolls_with_jkgG(pilot, app.main_screen.query_one(EventLog))

        await pilot.press("t", "s")  # the channel picker
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), what="the channel picker")
        picker = app.screen.query_one(NavOptionList)
        for key, where in (
            ("j", 1),
            ("G", picker.option_count - 1),
            ("k", picker.option_count - 2),
            ("g", 0),
        ):
            await pilot.press(key)
            assert picker.highlighted == where, key
        await pilot.press("escape")

        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpScreen), what="the ? screen")
        await scrolls_with_jkgG(pilot, app.screen.query_one(NavScroll))
        await pilot.press("escape")

        await pilot.resize_terminal(80, 20)  # the detail page overflows
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, NodeDetailScreen), what="the node detail")
        await scrolls_with_jkgG(pilot, app.screen.query_one(NavScroll))


async def test_one_key_map_entry_moves_the_keys_of_every_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREROLL_KEYMAP", "list.down=n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        panel = app.main_screen.query_one(LockPanel)
        await pilot.press("r", "j")
        assert panel.highlighted == 0  # j left the lists
        await pilot.press("n", "n")
        assert panel.highlighted == 2
        await pilot.press("t", "j")  # the node table keeps its own j
        assert app.main_screen.table.cursor_index == 1
