"""`NodeTable`: a line-API table that stays fast at 100,000 rows (Toolong's pattern).

Textual's DataTable measures every cell and rebuilds per-row offsets on each change, which puts
10,000 rows past one second to first paint (reference section 10). This widget draws only the
rows on screen, straight from the model's already filtered and sorted row list:

- `set_rows(rows, changed=None)`: the new visible list (the model's order). `changed` is the set of
  row keys whose content changed since the last call; when the order is the same as before only
  those rows' screen lines are refreshed, otherwise the whole widget is. `None` = assume all.
  `same_order=True` is the caller's promise that the keys are those of the last call, in the same
  order (rows swapped in place), which skips comparing every key (ms at 10,000s of rows).
  `index`, when given, is the caller's {key: position} of `rows` (never mutated afterwards):
  building one for 100,000 rows costs as much as sorting them.
- The cursor follows the row's key (machine id) across sorts and filters; when its row leaves the
  list the cursor stays at the same position.
- `marked` (a set of keys) is toggled with `toggle_mark()`; `cursor_key` / `cursor_row`.
- `stale = True` draws every row dimmed with a `~` marker (a source is down; the last known data
  stays).
- Strips are cached in an LRU keyed by (row key, row version, width, cursor, mark, stale), where the
  version is bumped for each key named in `changed`.
- Every cell is outside data (etcd, the update server): it goes through `coreroll.textsafe.visible`
  on its way to a strip, so a hostname like "\\x1b]0;pwned\\x07" shows as that text instead of
  retitling the terminal. Strips are plain segments, never markup. Only rows drawn pay for it
  (cache misses), and printable text costs one C-level scan.

Line API note (Textual >= 6): blank segments are not filled for us, so every strip is padded to the
full width with the widget's own style.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from coreroll.textsafe import visible
from widgets.table_spec import Column, TableSpec, fit_text

GUTTER = 2  # cursor mark ">" and row mark "*" (readable without colour)


class NodeTable(ScrollView, can_focus=True):
    MANY_CHANGED = 8192  # a reordered list with more changed rows than this: drop the strip cache
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "node-table--header",
        "node-table--cursor",
        "node-table--marked",
        "node-table--stale",
        "node-table--error",
        "node-table--offline",
        "node-table--unreadable",
    }
    DEFAULT_CSS = """
    NodeTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
    }
    NodeTable > .node-table--header { background: $panel; color: $text-accent; text-style: bold; }
    NodeTable > .node-table--cursor { background: $accent 40%; text-style: bold; }
    NodeTable:focus > .node-table--cursor { background: $accent 70%; text-style: bold; }
    NodeTable > .node-table--marked { background: $secondary 30%; }
    NodeTable > .node-table--stale { color: $text-muted; text-style: dim; }
    NodeTable > .node-table--error { color: $text-error; }
    NodeTable > .node-table--offline { color: $text-muted; }
    NodeTable > .node-table--unreadable { color: $text-error; text-style: bold; }
    """
    # priority: the app runs them as soon as it takes the key, instead of handing the key down to
    # the table and back up through every container (each hop waits its turn in the event loop,
    # behind model updates); they only apply while the table has focus either way
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up", priority=True),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down", priority=True),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.pageup", priority=True),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.pagedown", priority=True),
        Binding("home,g", "jump(0)", "First row", show=False, id="table.home", priority=True),
        Binding("end,G", "jump(-1)", "Last row", show=False, id="table.end", priority=True),
    ]

    def __init__(self, spec: TableSpec, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.spec = spec
        self.rows: Sequence[Any] = ()
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._cursor = 0
        self._cursor_key: str | None = None
        self.marked: set[str] = set()
        self._stale = False
        self._sort_key: str | None = None
        self._sort_reverse = False
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(2000)
        self._styles: dict[str, Style] = {}
        self._layout: list[tuple[Column, int]] = []
        self._layout_width = -1
        self.title_note = ""

    # -- data in ---------------------------------------------------------------------------
    def set_rows(
        self,
        rows: Sequence[Any],
        changed: Collection[str] | None = None,
        *,
        same_order: bool = False,
        index: dict[str, int] | None = None,
    ) -> None:
        keys = self._keys
        if not same_order:
            keys = list(map(self.spec.key, rows))
            same_order = keys == self._keys
        self.rows = rows
        if changed is None or (not same_order and len(changed) > self.MANY_CHANGED):
            # (dropping every cached strip forgets the changed rows' too: no version to bump)
            self._cache.clear()
        else:
            versions = self._versions
            for k in changed:
                versions[k] = versions.get(k, 0) + 1
        if same_order:
            if changed is None:
                self.refresh()
            else:
                self._refresh_keys(changed)
            return
        self._keys = keys
        self._index = dict(zip(keys, range(len(keys)), strict=True)) if index is None else index
        self._set_virtual_height(len(keys) + 1)
        if self._cursor_key is not None and self._cursor_key in self._index:
            self._cursor = self._index[self._cursor_key]
        else:
            self._cursor = min(self._cursor, max(len(keys) - 1, 0))
        new_key = keys[self._cursor] if keys else None
        if new_key != self._cursor_key:
            self._cursor_key = new_key
        self._scroll_cursor_into_view()
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        """A new row count. Textual lays out the whole screen on any change of `virtual_size`
        (20-40 ms under load, on every filter keystroke); the table's box does not depend on it,
        so unless the scrollbar appears or goes, only the scroll range changes (the caller
        repaints the lines)."""
        size = Size(self._width, height)
        if size == self.virtual_size:
            return
        visible = self.scrollable_content_region.height
        if self.is_mounted and visible and (size.height > visible) == (self.virtual_size.height > visible):
            self.set_reactive(NodeTable.virtual_size, size)  # pyright: ignore[reportArgumentType]  # on the class it is the Reactive: Textual's __get__ overloads are hidden behind TYPE_CHECKING
            if self.show_vertical_scrollbar:  # what a layout pass would tell the scrollbar
                bar = self.vertical_scrollbar
                bar.window_virtual_size = size.height
                bar.window_size = self.container_size.height - self.scrollbar_size_horizontal
        else:
            self.virtual_size = size

    @property
    def stale(self) -> bool:
        return self._stale

    @stale.setter
    def stale(self, value: bool) -> None:
        if value != self._stale:
            self._stale = value
            self.refresh()

    def set_sort(self, sort_key: str | None, reverse: bool) -> None:
        """Show which column the model sorts by (an arrow in that column's header)."""
        self._sort_key, self._sort_reverse = sort_key, reverse
        self.refresh(Region(0, 0, self._width, 1))

    # -- cursor and marks ------------------------------------------------------------------
    @property
    def row_index(self) -> dict[str, int]:
        """Row key -> position in `rows` (read only)."""
        return self._index

    @property
    def cursor_key(self) -> str | None:
        return self._cursor_key

    @property
    def cursor_index(self) -> int:
        return self._cursor

    @property
    def cursor_row(self) -> Any | None:
        return self.rows[self._cursor] if self.rows else None

    def move_cursor_to_key(self, key: str) -> bool:
        index = self._index.get(key)
        if index is None:
            return False
        self._move_to(index)
        return True

    def toggle_mark(self, key: str | None = None) -> None:
        key = key if key is not None else self._cursor_key
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        self._refresh_keys((key,))

    def clear_marks(self) -> None:
        keys = list(self.marked)
        self.marked.clear()
        self._refresh_keys(keys)

    def selected_keys(self) -> list[str]:
        """The marked rows still in the list, else the cursor row."""
        marked = [k for k in self._keys if k in self.marked] if self.marked else []
        if marked:
            return marked
        return [self._cursor_key] if self._cursor_key is not None else []

    def action_cursor(self, delta: int) -> None:
        self._move_to(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self._cursor + direction * max(self.size.height - 2, 1))

    def action_jump(self, where: int) -> None:
        self._move_to(0 if where == 0 else len(self._keys) - 1)

    def _move_to(self, index: int) -> None:
        if not self._keys:
            return
        index = max(0, min(index, len(self._keys) - 1))
        if index == self._cursor and self._keys[index] == self._cursor_key:
            return
        old = self._cursor
        self._cursor = index
        self._cursor_key = self._keys[index]
        if not self._scroll_cursor_into_view():
            self._refresh_index(old)
            self._refresh_index(index)

    def _scroll_cursor_into_view(self) -> bool:
        """Scroll so the cursor row is visible; True if it scrolled (whole widget repaints)."""
        visible = max(self.size.height - 1, 1)
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
            return True
        if self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)
            return True
        return False

    # -- refresh helpers -------------------------------------------------------------------
    def _refresh_keys(self, keys: Collection[str]) -> None:
        index = self._index
        top = int(self.scroll_y)
        bottom = top + self.size.height - 1
        for k in keys:
            i = index.get(k)
            if i is not None and top <= i < bottom:
                self.refresh(Region(0, i - top + 1, self._width, 1))

    def _refresh_index(self, i: int) -> None:
        top = int(self.scroll_y)
        if top <= i < top + self.size.height - 1:
            self.refresh(Region(0, i - top + 1, self._width, 1))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def on_resize(self) -> None:
        self.virtual_size = Size(self._width, len(self._keys) + 1)
        self._scroll_cursor_into_view()

    # -- rendering -------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style if name == "base" else self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def _columns(self, width: int) -> list[tuple[Column, int]]:
        if width != self._layout_width:
            self._layout = self.spec.fit(max(width - GUTTER, 0))
            self._layout_width = width
            self._cache.clear()
        return self._layout

    @property
    def _width(self) -> int:
        return self.scrollable_content_region.width

    def render_line(self, y: int) -> Strip:
        width = self._width
        if y == 0:
            return self._render_header(width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._keys) or index < 0:
            return Strip([Segment(" " * width, self._style("base"))], width)
        key = self._keys[index]
        cursor = index == self._cursor
        marked = key in self.marked
        cache_key = (key, self._versions.get(key, 0), width, cursor, marked, self._stale, self.has_focus)
        strip = self._cache.get(cache_key)
        if strip is None:
            strip = self._render_row(self.rows[index], width, cursor, marked)
            self._cache[cache_key] = strip
        return strip

    def _render_header(self, width: int) -> Strip:
        style = self._style("node-table--header")
        segments = [Segment(" " * GUTTER, style)]
        for n, (column, cell_width) in enumerate(self._columns(width)):
            title = column.title
            if column.sort is not None and column.sort == self._sort_key:
                title += "▼" if self._sort_reverse else "▲"
            if n:
                segments.append(Segment(" ", style))
            segments.append(Segment(fit_text(title, cell_width, column.align_right), style))
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, width).crop(0, width)

    def _render_row(self, row: Any, width: int, cursor: bool, marked: bool) -> Strip:
        base = self._style("base")
        row_class = self.spec.row_class(row)
        if self._stale:
            row_class = "stale"
        if row_class:
            base = base + self._style(f"node-table--{row_class}")
        if marked:
            base = base + self._style("node-table--marked")
        # the cursor goes on top of everything (a style applied after each cell's own)
        top = self._style("node-table--cursor") if cursor else None
        gutter = (">" if cursor else " ") + ("*" if marked else ("~" if self._stale else " "))
        line_style = base + top if top else base
        segments = [Segment(gutter, line_style)]
        plain = row_class in ("stale", "unreadable", "offline")
        span = self.spec.span(row)
        for n, (column, cell_width) in enumerate(self._columns(width)):
            if n:
                segments.append(Segment(" ", line_style))
                if span is not None:
                    segments.append(Segment(visible(span), line_style))
                    break
            text = fit_text(visible(column.text(row)), cell_width, column.align_right)
            cell_style = column.style(row) if column.style is not None and not plain else None
            style = base + Style.parse(cell_style) if cell_style else base
            segments.append(Segment(text, style + top if top else style))
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), line_style))
        return Strip(segments, width).crop(0, width).simplify()
