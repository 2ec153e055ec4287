"""`RowView`: the node table's rows, i.e. the model's rows filtered by the query in sort order,
kept up to date tick after tick without re-sorting when nothing moved.

Two lists are kept: every row in sort order (`all_rows`, rebuilt lazily with
`FleetModel.filter_rows`) and the table's filtered list. A tick first tries to swap the changed
rows into both in place, O(changes); only a change that moves a row (a new sort value, a new
filter verdict, a row added or removed) costs a re-sort. A new filter is applied to `all_rows`
without sorting again. Filtering and sorting themselves are the model's (`coreroll.watch.query`):
this only decides when they must run.

    view = RowView()
    rows = view.rows(model, table.rows, table.row_index, changed, full=False)
    view.set_query(text, model)  /  view.set_sort(column, reverse)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Any

from coreroll.watch.model import FleetModel
from coreroll.watch.query import SORT_KEYS, Query, parse_query

_machine_id = operator.attrgetter("machine_id")
_PLAIN = re.compile(r"\w[\w.-]*")  # one text term: no negation, field:value, quotes or spaces


def swap_in_place(
    rows: Sequence[Any],
    index: dict[str, int],
    changed: set[str],
    model_rows: dict[str, Any],
    sort_column: str,
    query: Query | None,
) -> list[Any] | None:
    """`rows` with the changed rows swapped in place, when no change moves a row (same sort value,
    same filter verdict, no row added or removed); None means the list must be rebuilt."""
    if len(changed) > len(rows) // 4 + 16:
        return None
    sort_value = SORT_KEYS[sort_column]
    out = list(rows)
    for mid in changed:
        new = model_rows.get(mid)
        i = index.get(mid)
        shown = new is not None and (query is None or query(new))
        if i is None or i >= len(out) or out[i].machine_id != mid:
            if shown:
                return None  # a row appears
            continue  # not shown before, not shown now
        if new is None or not shown or sort_value(out[i]) != sort_value(new):
            return None  # a row leaves or moves
        out[i] = new
    return out


class RowView:
    def __init__(self, sort_column: str = "machine", reverse: bool = False) -> None:
        self.sort_column = sort_column
        self.reverse = reverse
        self.query_text = ""
        self.query: Query | None = None
        self.order_dirty = True  # the filter or the sort changed: the table list is rebuilt
        self.all_rows: list[Any] | None = None
        self._all_index: dict[str, int] = {}
        self.same_order = False  # the last `rows()` only swapped rows in place: same keys, same order
        self._shown_text: str | None = None  # the filter the table's list was built with
        # {machine id: position} of what the last `rows()` returned, when it is known already
        # (the unfiltered list: its index is kept for swap_in_place); never mutated, only replaced
        self.shown_index: dict[str, int] | None = None

    def set_query(self, text: str, model: FleetModel) -> bool:
        """Use a new filter (raises QueryError); False when it is the same as before."""
        text = text.strip()
        if text == self.query_text:
            return False
        self.query = parse_query(text, model.stale_holder_ids()) if text else None
        self.query_text = text
        self.order_dirty = True
        return True

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.reverse = column, reverse
        self.all_rows = None
        self.order_dirty = True
        self._shown_text = None

    def _narrows(self) -> bool:
        """The new filter keeps a subset of what the table shows: one plain word that extends the
        word the list was built with (typing on at the end of the filter line). Text terms match
        substrings, so every row the longer word matches is already in the list."""
        old, new = self._shown_text, self.query_text
        return bool(old) and old is not None and new.startswith(old) and _PLAIN.fullmatch(new) is not None

    def rows(
        self,
        model: FleetModel,
        shown: Sequence[Any],
        shown_index: dict[str, int],
        changed: set[str],
        full: bool = False,
    ) -> list[Any]:
        """The table's new list, given what it shows now and the machine ids that changed."""
        if full:
            self.all_rows = None
        elif self.all_rows is not None:
            self.all_rows = swap_in_place(
                self.all_rows, self._all_index, changed, model.rows, self.sort_column, None
            )
        rows = None
        if not (full or self.order_dirty):
            rows = swap_in_place(shown, shown_index, changed, model.rows, self.sort_column, self.query)
        self.same_order = rows is not None
        if rows is None and self.order_dirty and not (full or changed) and self.query and self._narrows():
            rows = self.query.select(shown)
        if rows is None:
            if self.all_rows is None:
                self.all_rows = model.filter_rows("", self.sort_column, self.reverse)
                ids = map(_machine_id, self.all_rows)
                self._all_index = dict(zip(ids, range(len(self.all_rows)), strict=True))
            rows = self.all_rows if self.query is None else self.query.select(self.all_rows)
        self.order_dirty = False
        self._shown_text = self.query_text
        self.shown_index = self._all_index if rows is self.all_rows else None
        return rows
