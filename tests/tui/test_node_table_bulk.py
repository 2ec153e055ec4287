"""NodeTable when most rows change at once and the order moves (a big listing read in, a re-sort):
the strip cache is dropped instead of bumping a version per row, and an index the caller already
has is used as is. What is on screen must be the new rows, and the cursor must stay on its key."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from textual.app import App, ComposeResult

from tests.tui.helpers import screen_text, wait_for, wait_for_text
from widgets.node_table import NodeTable
from widgets.table_spec import Column, TableSpec


@dataclass(frozen=True)
class Item:
    key: str
    value: str


SPEC = TableSpec(columns=[Column("key", "key", 8, lambda r: r.key), Column("value", "value", 12, lambda r: r.value)],
                 key=lambda r: r.key)  # fmt: skip


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield NodeTable(SPEC, id="t")


@pytest.mark.parametrize("given_index", [False, True])
async def test_many_changed_rows_in_a_new_order_show_their_new_values(
    monkeypatch: pytest.MonkeyPatch, given_index: bool
) -> None:
    monkeypatch.setattr(NodeTable, "MANY_CHANGED", 5)  # (20 rows stand for 10,000s)
    app = TableApp()
    async with app.run_test(size=(40, 24)) as pilot:
        table = app.query_one(NodeTable)
        rows = [Item(f"k{i:02d}", f"old-{i:02d}") for i in range(20)]
        table.set_rows(rows)
        await wait_for_text(app, "old-00")
        table.move_cursor_to_key("k03")
        await pilot.pause()
        changed = [Item(r.key, f"new-{r.key}") for r in reversed(rows)]  # every row, reordered
        index = {r.key: i for i, r in enumerate(changed)} if given_index else None
        table.set_rows(changed, {r.key for r in changed}, index=index)
        text = await wait_for_text(app, "new-k19")
        assert "old-" not in text
        assert table.cursor_key == "k03" and table.cursor_index == 16
        assert table.row_index["k00"] == 19
        table.set_rows([*changed[:1], Item("k18", "newer"), *changed[2:]], {"k18"}, same_order=True)
        await wait_for(lambda: "newer" in screen_text(app), what="a single change after the bulk one")
