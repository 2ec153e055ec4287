"""Column and row description for `widgets.node_table.NodeTable` (no Textual here).

A `Column` knows how to turn a row into one cell: `text(row) -> str` and an optional
`style(row) -> str | None` naming a Rich style ("red", "bold yellow") or `None` for the table's
default. `width` is the cell width; `priority` decides which columns survive on a narrow terminal
(lower = kept first); `flex` columns share what is left over. `sort` names the model's sort key
this column sorts by (or `None` if it cannot be sorted).

A `TableSpec` groups the columns with `key(row) -> str` (the row's stable id, the machine id)
and `row_class(row) -> str | None`, which picks a whole-row look: one of "stale", "error",
"offline", "unreadable", or None. `span(row) -> str | None`: when it returns text, the row shows
its first column and then that text across all the others (used for an unreadable node: the
error naming the key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = Any


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    text: Callable[[Row], str]
    style: Callable[[Row], str | None] | None = None
    priority: int = 5
    flex: bool = False
    sort: str | None = None
    align_right: bool = False


@dataclass(frozen=True, slots=True)
class TableSpec:
    columns: Sequence[Column]
    key: Callable[[Row], str]
    row_class: Callable[[Row], str | None] = field(default=lambda row: None)
    span: Callable[[Row], str | None] = field(default=lambda row: None)

    def fit(self, width: int) -> list[tuple[Column, int]]:
        """The columns that fit in `width` cells (with one space between them), in display order,
        with their widths; leftover width goes to the flex columns."""
        by_priority = sorted(range(len(self.columns)), key=lambda i: self.columns[i].priority)
        chosen: set[int] = set()
        used = 0
        for index in by_priority:
            need = self.columns[index].width + (1 if chosen else 0)
            if used + need <= width:
                chosen.add(index)
                used += need
        ordered = [i for i in range(len(self.columns)) if i in chosen]
        widths = {i: self.columns[i].width for i in ordered}
        flex = [i for i in ordered if self.columns[i].flex]
        spare = width - used
        for n, index in enumerate(flex):
            share = spare // (len(flex) - n)
            widths[index] += share
            spare -= share
        return [(self.columns[i], widths[i]) for i in ordered]


def fit_text(text: str, width: int, align_right: bool = False) -> str:
    """`text` cut or padded to exactly `width` cells ("…" marks a cut)."""
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…" if width > 0 else ""
    return text.rjust(width) if align_right else text.ljust(width)
