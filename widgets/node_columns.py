"""The node table's columns over `coreroll.watch.views.NodeRow` (formatting only; no model logic).

A column over a plain status field is `field_column(path)`: its title and formatting come from the
field's row in `coreroll.wire.status.STATUS_FIELDS` (coreroll/wire/__init__.py says how to add one).

`NODE_TABLE` is the `TableSpec` the dashboard uses. Column `sort` values are the model's sort
column ids (`coreroll.watch.query.SORT_KEYS`). Times are shown as UTC clock times rather than
"5s ago" so a row's drawing only changes when the row does (strips stay cached).
`SORT_CYCLE` is the order `o` steps through.
"""

from __future__ import annotations

import operator
import time
from typing import cast

from coreroll.watch.views import STATE_ERROR, STATE_REBOOT, STATE_UPDATING, NodeRow
from coreroll.wire import status as wire
from widgets.table_spec import Column, TableSpec


def dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def clock(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%H:%M:%S", time.gmtime(ts))


def status_text(row: NodeRow) -> str:
    label = row.status_label
    if row.update_progress is not None and row.update_status == "UPDATE_STATUS_DOWNLOADING":
        return f"{label} {int(row.update_progress * 100):d}%"
    return label


def status_style(row: NodeRow) -> str | None:
    if row.state == STATE_ERROR:
        return "bold red"
    if row.state == STATE_UPDATING:
        return "yellow"
    if row.state == STATE_REBOOT:
        return "cyan"
    if row.server_status == "OnHold":
        return "magenta"
    return None


def lock_text(row: NodeRow) -> str:
    if row.holds_lock:
        return "held"
    return "-" if row.holds_lock is None else "no"


def online_text(row: NodeRow) -> str:
    if row.online is None:
        return "-"
    return "yes" if row.online else "NO"


def row_class(row: NodeRow) -> str | None:
    if row.error:
        return "unreadable"
    if row.state == STATE_ERROR:
        return "error"
    if row.online is False:
        return "offline"
    return None


def name_text(row: NodeRow) -> str:
    return row.display_name


def span_text(row: NodeRow) -> str | None:
    """An unreadable node: the error (it names the key) across the row, so it can be looked at."""
    return f"UNREADABLE {row.error}" if row.error else None


def field_text(kind: str, value: object) -> str:
    """A status field's value as a cell, by its wire kind."""
    if kind in (wire.TIME, wire.EPOCH):
        return clock(cast("float | None", value))  # the reader made it epoch seconds
    if kind == wire.FRACTION and value is not None:
        return f"{int(cast(float, value) * 100):d}%"  # the reader checked it is a number in 0..1
    if kind == wire.BOOL and value is not None:
        return "yes" if value else "no"
    return dash(value)


def field_column(path: str, width: int | None = None, priority: int = 5, title: str | None = None) -> Column:
    """A column showing wire status field `path` as read (title from the wire table); see
    coreroll/wire/__init__.py for adding a field and its column."""
    spec = wire.field(path)
    heading = title or spec.title or spec.name
    return Column(
        path,
        heading,
        width or max(len(heading), 6),
        lambda r: field_text(spec.kind, r.field(path)),
        priority=priority,
    )


COLUMNS = (
    Column("name", "node", 14, name_text, priority=0, flex=True, sort="hostname"),
    Column("channel", "chan", 7, lambda r: dash(r.channel), priority=1, sort="channel"),
    Column("version", "version", 10, lambda r: dash(r.version), priority=1, sort="version"),
    Column("usr", "usr", 5, lambda r: dash(r.active_partition), priority=2, sort="usr"),
    Column("other", "other usr", 10, lambda r: dash(r.other_version), priority=6, sort="other"),
    Column("status", "status", 15, status_text, status_style, priority=0, sort="status"),
    Column("lock", "lock", 4, lock_text, lambda r: "bold" if r.holds_lock else None, priority=2, sort="lock"),
    Column("last_check", "checked", 8, lambda r: clock(r.last_check), priority=4, sort="last_check"),
    Column(
        "online",
        "on",
        3,
        online_text,
        lambda r: "red" if r.online is False else None,
        priority=3,
        sort="online",
    ),
    Column("server", "server", 13, lambda r: dash(r.server_status), priority=7, sort="server"),
    Column("group", "group", 8, lambda r: dash(r.group), priority=8, sort="group"),
)

NODE_TABLE = TableSpec(
    columns=COLUMNS, key=operator.attrgetter("machine_id"), row_class=row_class, span=span_text
)

SORT_CYCLE = tuple(c.sort for c in COLUMNS if c.sort is not None)
