"""The dashboard on a fixed sample fleet (no live sources): layout, filter, sort, detail, freeze,
stale marking, unreadable rows, help and read-only. The live tests against etcd and the server
are in test_live.py."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from coreroll.watch import updates as u
from coreroll.watch.actions import ActionResult
from coreroll.watch.model import FleetModel
from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tui.app import DashApp
from tui.sample import NOW, STATUS_KEY, machine_id, sample_updates, status_json
from widgets.node_table import NodeTable

pytestmark = pytest.mark.slow


def make_app(n: int = 40, **kwargs: object) -> DashApp:
    app = DashApp(FleetModel(clock=lambda: NOW), clock=lambda: NOW, watch_tty=False, **kwargs)  # type: ignore[arg-type]
    for update in sample_updates(n):
        app.buffer.put(update)
    return app


def table(app: DashApp) -> NodeTable:
    return app.main_screen.query_one("#nodes", NodeTable)


async def test_main_screen_at_80x24_shows_every_panel() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = await wait_for_text(app, "node-0000")
        assert app.main_screen.has_class("-narrow")
        for expected in ("etcd: ok", "server: ok", "nodes 40", "stable", "reboot locks", "events", "Check"):
            assert expected in text, expected
        assert table(app).cursor_key == machine_id(0)
        await pilot.press("down", "down")
        assert table(app).cursor_index == 2
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert app.main_screen.has_class("-wide")
        assert "other usr" in screen_text(app)


async def test_filter_by_field_and_text() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        alpha = [r for r in app.model.rows.values() if r.channel == "alpha"]
        await pilot.press("slash", *"channel:alpha", "enter")
        await wait_for(lambda: len(table(app).rows) == len(alpha), what="alpha rows only")
        assert all(r.channel == "alpha" for r in table(app).rows)
        assert f"nodes {len(alpha)}/40" in screen_text(app)
        assert table(app).has_focus
        await pilot.press("escape")  # clears the filter
        await wait_for(lambda: len(table(app).rows) == 40, what="all rows back")
        await pilot.press("slash", *"node-0003", "enter")
        await wait_for(lambda: [r.hostname for r in table(app).rows] == ["node-0003"], what="text filter")


async def test_the_scroll_range_and_scrollbar_follow_the_filtered_row_count() -> None:
    app = make_app(200)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        nodes = table(app)
        await wait_for(lambda: len(nodes.rows) == 200, what="all rows")
        assert nodes.show_vertical_scrollbar
        await pilot.press("slash", *"node-01")  # node-0100..0199, while the filter line is open
        await wait_for(lambda: len(nodes.rows) == 100, what="100 rows")
        visible = nodes.scrollable_content_region.height
        assert nodes.show_vertical_scrollbar and nodes.max_scroll_y == 100 + 1 - visible
        assert nodes.vertical_scrollbar.window_virtual_size == 100 + 1  # the thumb's size follows
        await pilot.press("enter", "end")
        last = nodes.rows[-1].hostname
        await wait_for(lambda: last in screen_text(app), what="the last filtered row on screen")
        await pilot.press("slash", "end", "9", "enter")  # node-0190..0199: no scrolling
        await wait_for(lambda: len(nodes.rows) == 10, what="10 rows")
        await pilot.pause()
        assert not nodes.show_vertical_scrollbar and nodes.scroll_y == 0
        assert all(row.hostname in screen_text(app) for row in nodes.rows)


async def test_a_bad_filter_names_the_field_and_keeps_the_rows() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"colour:red")
        await wait_for_text(app, "unknown filter field 'colour'")
        await pilot.press("enter")  # refused: the box stays open
        await wait_for_text(app, "unknown filter field 'colour' in 'colour:red'")
        await pilot.press("escape")  # cancel: back to the filter from before
        await wait_for(lambda: len(table(app).rows) == 40, what="all rows back")
        assert app.query_text == ""


async def test_textual_app_actions_work_on_the_dashboard() -> None:
    # Textual's own app.focus action calls App.query(); a `query` property on the app made it raise
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.run_action("app.focus('nodes')")
        await pilot.press("down")
        await pilot.pause()
        assert app.is_running and app.focused is table(app) and table(app).cursor_key is not None


async def test_sort_cycles_columns_and_reverses_keeping_the_cursor_row() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down")
        chosen = table(app).cursor_key
        await pilot.press("o")  # machine id -> hostname
        assert app.sort_column == "hostname"
        names = [r.hostname for r in table(app).rows]
        assert names == sorted(names)
        assert table(app).cursor_key == chosen
        assert "node▲" in screen_text(app)
        await pilot.press("O")
        names = [r.hostname for r in table(app).rows]
        assert names == sorted(names, reverse=True)
        assert table(app).cursor_key == chosen
        assert "node▼" in screen_text(app)
        await pilot.press("o")  # -> channel
        assert [r.channel for r in table(app).rows] == sorted(r.channel for r in table(app).rows)


async def test_detail_opens_with_partitions_and_closes() -> None:
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        text = await wait_for_text(app, "partitions (cgpt show)")
        assert machine_id(0) in text
        assert 'Label: "USR-A"  (booted)' in text
        assert "Attr: priority=2 tries=0 successful=1" in text
        assert "no --server configured" in text
        await pilot.press("escape")
        await wait_for_text(app, "reboot locks")


async def test_mark_selects_rows_for_bulk_actions() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "down", "down", "space")
        assert table(app).selected_keys() == [table(app).rows[0].machine_id, table(app).rows[2].machine_id]
        assert screen_text(app).count(" *") >= 1
        await pilot.press("escape")
        assert table(app).marked == set()


async def test_freeze_stops_repainting_while_the_model_keeps_up() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f")
        await wait_for_text(app, "[FROZEN]")
        mid = machine_id(0)
        repaints = app.repaints
        app.buffer.put(u.NodeStatus(mid, STATUS_KEY.format(mid), status_json(mid, hostname="renamed-host")))
        app.flush()  # applies the update now; a repaint, were there one, would be done when it returns
        assert app.model.get(mid).hostname == "renamed-host"
        await pilot.pause()  # the screen renders what it was given
        assert app.repaints == repaints and "renamed-host" not in screen_text(app)
        await pilot.press("f")
        await wait_for_text(app, "renamed-host")


async def test_a_source_going_down_marks_rows_stale_and_keeps_them() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.buffer.put(u.Connection("etcd", "down", "connection refused", NOW))
        text = await wait_for_text(app, "etcd: DOWN")
        assert "node-0000" in text
        assert table(app).stale
        assert ">~" in text  # the cursor row carries the stale marker
        app.buffer.put(u.Connection("etcd", "connected", "", NOW))
        await wait_for_text(app, "etcd: ok")
        assert not table(app).stale


async def test_corrupt_status_json_shows_the_node_unreadable_with_its_key() -> None:
    app = make_app(5)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        key = STATUS_KEY.format("deadbeef")
        app.buffer.put(u.NodeStatus("deadbeef", key, b'{"machine_id": "deadbeef", "version": '))
        text = await wait_for_text(app, key)
        assert "unreadable" in text
        assert "node-0001" in text  # the rest still renders


async def test_help_lists_every_key_with_its_binding_id() -> None:
    app = make_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        text = await wait_for_text(app, "coreroll keys")
        for binding_id in ("check", "switch_channel", "unlock", "set_max", "pause", "mark", "filter",
                           "sort", "reverse", "detail", "focus_log", "freeze", "help", "quit"):  # fmt: skip
            assert binding_id in text, binding_id
        await pilot.press("escape")
        await wait_for_text(app, "coreroll keys", present=False)


class RecordingActions:
    """An action layer (tui.interventions.ActionLayer) that records the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def _record(self, name: str) -> ActionResult:
        self.calls.append(name)
        return ActionResult(True, f"{name} recorded")

    async def check(self, ids: Sequence[str]) -> ActionResult:
        return await self._record("check")

    async def set_channel(self, ids: Sequence[str], channel: str) -> ActionResult:
        return await self._record("set_channel")

    async def unlock(self, group: str, holder: str) -> ActionResult:
        return await self._record("unlock")

    async def set_max(self, group: str, new_max: int) -> ActionResult:
        return await self._record("set_max")

    async def pause_group(self, group: str) -> ActionResult:
        return await self._record("pause_group")

    async def resume_group(self, group: str) -> ActionResult:
        return await self._record("resume_group")


async def test_read_only_hides_every_mutating_key() -> None:
    actions = RecordingActions()
    app = make_app(actions=actions, read_only=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "[R]" in text
        for label in ("Check", "Chan", "Unlock", "Max", "Pause"):
            assert label not in text.splitlines()[-1], label
        await pilot.press("c", "s", "u", "m", "p")
        await pilot.pause()
        assert actions.calls == []
        assert len(app.screen_stack) == 2  # no dialog opened


@pytest.mark.parametrize("value", ["1", ""])
def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NO_COLOR", value)
    assert DashApp().no_color


@pytest.mark.parametrize(("sort", "query"), [("machine", ""), ("status", ""), ("hostname", "channel:stable")])
async def test_table_always_equals_the_models_sorted_filtered_rows(sort: str, query: str) -> None:
    """The in-place fast path must give exactly what a full re-sort gives, tick after tick."""
    from tui.sample import status_change

    app = make_app(200)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.set_sort(sort, False)
        app.set_query(query)
        for step in range(12):
            for i in range(0, 200, 7 + step):  # some changes keep the order, some move rows
                app.buffer.put(status_change(i, step, NOW))
            if step == 5:  # a node vanishes, another appears
                app.buffer.put(u.NodeStatus(machine_id(3), STATUS_KEY.format(machine_id(3)), None))
                app.buffer.put(
                    u.NodeStatus(
                        "new-node",
                        STATUS_KEY.format("new-node"),
                        status_json("new-node", hostname="new-node"),
                    )
                )
            app.flush()
            expected = [r.machine_id for r in app.model.filter_rows(query, sort, False)]
            assert [r.machine_id for r in table(app).rows] == expected, step
            assert [r.rev for r in table(app).rows] == [app.model.get(m).rev for m in expected]


async def test_keys_can_be_remapped_by_binding_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREROLL_KEYMAP", "check=C,freeze=F")
    actions = RecordingActions()
    app = make_app(actions=actions)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        # Keys are handled in order: had c or f kept their old meaning, there would be two checks,
        # or f and F would have frozen and thawed the display.
        await pilot.press("c", "f", "C", "F")
        await wait_for(lambda: actions.calls == ["check"], what="check through the remapped key")
        await wait_for(lambda: app.frozen, what="frozen through the remapped key")
        assert actions.calls == ["check"]
        await pilot.press("question_mark")
        assert "C " in await wait_for_text(app, "coreroll keys")


async def test_help_shows_remapped_keys_not_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREROLL_KEYMAP", "check=C;table.up=w,i")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        keys = {(key, binding_id) for key, _, binding_id in app.help_rows()}
        assert ("C", "check") in keys and ("c", "check") not in keys
        assert {key for key, binding_id in keys if binding_id == "table.up"} == {"w", "i"}
        assert ("s", "switch_channel") in keys  # the rest keep their keys
