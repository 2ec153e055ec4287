"""The command palette under pilot: every action by its description (mutating ones hidden when
read-only), go to node in a 10,000-node fleet, hostile names shown as text, saved filters, themes
(NO_COLOR still wins), and the `?` screen with a key map file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from textual.command import CommandPalette

from coreroll.watch import updates as u
from coreroll.watch.actions import ActionResult
from tests.tui.helpers import palette_hits as hits
from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tests.tui.test_screen import RecordingActions, make_app
from tui.app import DashApp
from tui.keymap import DashAction
from tui.keymap_config import load_keymap
from tui.sample import STATUS_KEY, machine_id, status_json
from widgets.dialogs import TextDialog

pytestmark = pytest.mark.slow


async def run_from_palette(pilot: object, app: DashApp, typed: str, first: str) -> None:
    """ctrl+p, type, wait until `first` is the top hit, Enter: the palette closes (or another opens)."""
    await pilot.press("ctrl+p")  # type: ignore[attr-defined]
    await wait_for(lambda: CommandPalette.is_open(app), what="the palette")
    palette = app.screen
    await pilot.press(*typed)  # type: ignore[attr-defined]
    await wait_for(lambda: hits(app)[:1] == [first], what=f"{first!r} first (got {hits(app)[:3]})")
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_for(lambda: app.screen is not palette, what="the palette to close")


class IdRecordingActions(RecordingActions):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    async def check(self, ids: Sequence[str]) -> ActionResult:
        self.ids = list(ids)
        return await super().check(ids)


@pytest.mark.parametrize("read_only", [False, True])
async def test_the_palette_lists_every_action_by_its_description(read_only: bool) -> None:
    app = make_app(read_only=read_only)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("colon")  # k9s's key, besides ctrl+p
        await wait_for(lambda: len(hits(app)) > 10, what="the palette's list")
        listed = set(hits(app))
        for action in DashAction:
            if action is DashAction.COMMAND_PALETTE:
                continue
            assert (action.description in listed) is not (read_only and action.mutating), action
        assert {"go to node...", "change theme"} <= listed
        assert "key c  (check)" in screen_text(app) or read_only  # each says its key


async def test_a_command_does_what_its_key_does_on_the_marked_rows() -> None:
    actions = IdRecordingActions()
    app = make_app(actions=actions)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "down", "space")
        await run_from_palette(pilot, app, "check for", DashAction.CHECK.description)
        await wait_for(lambda: actions.calls == ["check"], what="the check through the palette")
        assert actions.ids == [machine_id(0), app.main_screen.table.rows[1].machine_id]
        await run_from_palette(pilot, app, "sort by", DashAction.SORT.description)
        assert app.sort_column == "hostname"


async def test_go_to_node_finds_any_node_of_10000_and_moves_the_cursor_there() -> None:
    app = make_app(10_000)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: len(app.main_screen.table.rows) == 10_000, 10, "10,000 rows")
        table = app.main_screen.table
        await run_from_palette(pilot, app, "node-7431", "go to node node-7431")
        assert table.cursor_row.hostname == "node-7431"
        assert "> node-7431" in await wait_for_text(app, "> node-7431")
        # the palette's "go to node...": nodes only, letters with gaps
        await run_from_palette(pilot, app, "go to node", "go to node...")
        await wait_for(
            lambda: CommandPalette.is_open(app) and len(hits(app)) == 40, what="the first 40 nodes"
        )
        await pilot.press(*"nd0815")
        await wait_for(lambda: hits(app)[:1] == ["node-0815"], what="node-0815 first")
        await pilot.press("enter")
        await wait_for(lambda: table.cursor_row.hostname == "node-0815", what="the cursor on node-0815")
        assert table.has_focus


async def test_going_to_a_node_the_filter_hides_clears_the_filter() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause()
        beta = next(r for r in app.model.rows.values() if r.channel == "beta")
        app.set_query("channel:alpha")
        await pilot.press("l")  # focus elsewhere: going there focuses the table
        await run_from_palette(pilot, app, beta.hostname or "", f"go to node {beta.hostname}")
        assert app.query_text == "" and app.main_screen.table.cursor_key == beta.machine_id
        assert app.main_screen.table.has_focus
        await wait_for_text(app, f"filter 'channel:alpha' cleared: it hid {beta.hostname}")


async def test_hostile_node_names_show_as_text_in_the_palette() -> None:
    app = make_app()
    evil = {"e" * 32: "[bold red]x[/] [link=http://evil.example]click[/link]", "f" * 32: "x\x1b]0;pwned\x07"}
    for mid, host in evil.items():
        app.buffer.put(u.NodeStatus(mid, STATUS_KEY.format(mid), status_json(mid, hostname=host)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p", *"[bold")
        text = await wait_for_text(app, "go to node [bold red]x[/] [link=http://evil.example]click[/link]")
        assert "e" * 32 in text  # its machine id under it
        await pilot.press("escape", "ctrl+p", *"x\\x1b")
        await wait_for_text(app, "go to node x\\x1b]0;pwned\\x07")
        await pilot.press("enter")
        await wait_for(lambda: app.main_screen.table.cursor_key == "f" * 32, what="the cursor on the node")


async def test_a_filter_is_saved_under_a_name_and_applied_from_the_palette(own_config_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause()
        app.set_query("channel:beta status:error")
        await run_from_palette(pilot, app, "save the filter", "save the filter as...")
        await wait_for(lambda: isinstance(app.screen, TextDialog), what="the name dialog")
        await pilot.press(*"beta errors", "enter")
        await wait_for_text(app, "saved filter 'beta errors'")
        saved = own_config_folder / "filters.toml"
        assert saved.read_text().endswith('"beta errors" = "channel:beta status:error"\n')
        app.set_query("")
        await run_from_palette(pilot, app, "filter: beta", "filter: beta errors")
        assert app.query_text == "channel:beta status:error"
        assert all(r.channel == "beta" for r in app.main_screen.table.rows)


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_a_broken_filters_file_is_reported_and_the_palette_still_works(own_config_folder: Path) -> None:
    broken = write_file(own_config_folder / "filters.toml", 'ok = "channel:beta"\nbad = channel:alpha\n')
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause()
        await run_from_palette(pilot, app, "sort by", DashAction.SORT.description)
        await wait_for_text(app, "line 2: not TOML")
        assert app.sort_column == "hostname"
        assert broken.read_text() == 'ok = "channel:beta"\nbad = channel:alpha\n'


def colours(svg: str) -> set[str]:
    frame = {"#ff5f57", "#febc2e", "#28c840", "#c5c8c6"}  # the SVG's window buttons and default text
    return {c.lower() for c in re.findall(r"#[0-9a-fA-F]{6}", svg)} - frame


async def test_the_theme_changes_from_the_palette_and_no_color_still_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(theme="dracula")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "dracula"
        await run_from_palette(pilot, app, "change theme", "change theme")
        await wait_for(lambda: CommandPalette.is_open(app), what="the theme list")
        await pilot.press(*"nord")
        await wait_for(lambda: hits(app)[:1] == ["nord"], what="nord first")
        await pilot.press("enter")
        await wait_for(lambda: app.theme == "nord" and not CommandPalette.is_open(app), what="the nord theme")
        await pilot.pause()
        coloured = [c for c in colours(app.export_screenshot()) if not c[1:3] == c[3:5] == c[5:7]]
        assert coloured == []  # greys only


async def test_without_no_color_a_theme_has_colours() -> None:
    """The check above can fail: the same screen in colour."""
    app = make_app(theme="nord")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert [c for c in colours(app.export_screenshot()) if not c[1:3] == c[3:5] == c[5:7]]


async def test_help_shows_the_keys_from_the_key_map_file_and_where_they_come_from(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text('check = "C"\n[list]\ndown = "down,n"\n')
    actions = RecordingActions()
    app = make_app(actions=actions, keymap=load_keymap(DashApp, file=keys, file_wins=True, env=""))
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        await pilot.press("c", "C")
        await wait_for(lambda: actions.calls == ["check"], what="check on C only")
        await pilot.press("question_mark")
        text = await wait_for_text(app, "coreroll keys (remapped by")
        assert f"{keys})" in text  # the title wraps before the path
        assert re.search(r" C +check for an update now", text), text
        assert ("n", "list.down") in {(key, binding_id) for key, _, binding_id in app.help_rows()}
