"""The node status document at `coreroll/v1/nodes/<machine-id>/status`, as one field table.

`STATUS_FIELDS` is the only place the document's fields are listed. From it:
- the writer `status_document(values)` lays the document out (table order, every key present,
  unknown values null) for the agent (`coreroll.node.nodestatus`) and `coreroll report`
  (`coreroll.host`);
- the reader `coreroll.watch.parse.parse_node_status` checks each field by its `kind` (bounds,
  and a problem naming the field's `path`) and stores it in `NodeReport.<attr>`, or, for a field
  with no `attr`, in `NodeReport.extra[path]`;
- test fixtures and sample fleets start from `sample_document(machine_id)` (each field's `sample`).

A `path` is "name" for a top-level field and "section.name" inside the "update" or "reboot"
object. Kinds and what they mean on the wire:
- STR: a string or null.  VERSION: a version string; "0.0.0.0" or "" reads as "none".
- INT: an integer within int64.  FRACTION: a number from 0 to 1 (written rounded to 4 places).
- BOOL: true, false or null.
- TIME: ISO 8601 UTC with "Z" (written from epoch seconds; read from a string or a number).
- EPOCH: integer epoch seconds, as update_engine's GetStatus; 0 reads as "never".
- PARTITIONS: a list of {label, version, priority, tries, successful} (`PARTITION_FIELDS`).
- COMMAND: {id, action, result, at} or null (the last command the agent ran).

Adding a field: one `Field(...)` row here (writers then write it, null until a producer passes
its value by path, `build_report(..., more={path: value})`; readers check and keep it in `NodeReport.extra`), and, to show it, one
`field_column(path, ...)` in widgets/node_columns.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from coreroll.wire.times import iso_time as wire_time

STR = "str"
VERSION = "version"
INT = "int"
FRACTION = "fraction"
BOOL = "bool"
TIME = "time"
EPOCH = "epoch"
PARTITIONS = "partitions"
COMMAND = "command"
KINDS = frozenset({STR, VERSION, INT, FRACTION, BOOL, TIME, EPOCH, PARTITIONS, COMMAND})
SECTIONS = ("update", "reboot")


@dataclass(frozen=True, slots=True)
class Field:
    path: str  # "hostname", or "update.progress" inside a section
    kind: str  # one of KINDS
    attr: str | None  # the NodeReport attribute it is read into; None: NodeReport.extra[path]
    sample: Any  # the value in fixtures; a str may name "{machine_id}"
    title: str = ""  # a column heading for it (widgets/node_columns.field_column)
    section: str | None = dataclass_field(init=False)  # "update" for "update.progress", else None
    name: str = dataclass_field(init=False)  # "progress" for "update.progress"

    def __post_init__(self) -> None:
        # set once: readers look these up for every field of every report
        section, _, name = self.path.rpartition(".")
        object.__setattr__(self, "section", section or None)
        object.__setattr__(self, "name", name)


SAMPLE_PARTITIONS = (
    {"label": "USR-A", "version": "4699.0.0", "priority": 2, "tries": 0, "successful": 1},
    {"label": "USR-B", "version": "4650.0.0", "priority": 1, "tries": 0, "successful": 1},
)

STATUS_FIELDS: tuple[Field, ...] = (
    Field("machine_id", STR, "machine_id", "{machine_id}", "machine id"),
    Field("hostname", STR, "hostname", "host-{machine_id}", "node"),
    Field("channel", STR, "channel", "beta", "chan"),
    Field("server", STR, "server", "http://127.0.0.1:8400", "server url"),
    Field("version", STR, "version", "4699.0.0", "version"),
    Field("active_partition", STR, "active_partition", "USR-A", "usr"),
    Field("partitions", PARTITIONS, "partitions", SAMPLE_PARTITIONS, "partitions"),
    Field("update.status", STR, "update_status", "UPDATE_STATUS_IDLE", "status"),
    Field("update.progress", FRACTION, "update_progress", 0.0, "progress"),
    Field("update.new_version", VERSION, "new_version", "0.0.0.0", "new version"),
    Field("update.new_size", INT, "new_size", 0, "new size"),
    Field("update.last_checked_time", EPOCH, "last_checked", 1795770000, "checked"),
    Field("reboot.strategy", STR, "reboot_strategy", "etcd-lock", "strategy"),
    Field("reboot.lock_group", STR, "lock_group", "", "lock group"),
    Field("reboot.window", STR, "reboot_window", None, "window"),
    Field("reboot.holds_lock", BOOL, "holds_lock", False, "lock"),
    Field("boot_id", STR, "boot_id", "b-{machine_id}", "boot id"),
    Field("booted_at", TIME, "booted_at", "2026-11-27T09:00:00Z", "booted"),
    Field("reported_at", TIME, "reported_at", "2026-11-27T09:30:00Z", "reported"),
    Field("last_command", COMMAND, "last_command", None, "last command"),
)

PARTITION_FIELDS: tuple[Field, ...] = (
    Field("label", STR, "label", "USR-A"),
    Field("version", STR, "version", "4699.0.0"),
    Field("priority", INT, "priority", 2),
    Field("tries", INT, "tries", 0),
    Field("successful", INT, "successful", 1),
)


def check_table(fields: tuple[Field, ...]) -> None:
    """ValueError naming the row when a table is not one the writer and reader can use."""
    seen: set[str] = set()
    names: set[str] = set()
    for field in fields:
        if field.kind not in KINDS:
            raise ValueError(f"status field {field.path}: unknown kind {field.kind!r}")
        if field.section is not None and field.section not in SECTIONS:
            raise ValueError(f"status field {field.path}: section must be one of {SECTIONS}")
        if field.path in seen:
            raise ValueError(f"status field {field.path}: listed twice")
        if field.name in names:  # fixtures override fields by name
            raise ValueError(f"status field {field.path}: name {field.name!r} is used twice")
        seen.add(field.path)
        names.add(field.name)


check_table(STATUS_FIELDS)
_by_path: tuple[tuple[Field, ...], dict[str, Field]] = ((), {})


def field(path: str) -> Field:
    """The row of `STATUS_FIELDS` for `path`; KeyError naming it if the table has no such field.
    (Looked up at call time, like every user of the table, so a test may extend the table.)"""
    global _by_path
    if _by_path[0] is not STATUS_FIELDS:
        _by_path = (STATUS_FIELDS, {f.path: f for f in STATUS_FIELDS})
    try:
        return _by_path[1][path]
    except KeyError:
        raise KeyError(f"no status field {path!r} in coreroll.wire.status.STATUS_FIELDS") from None


def iso_time(epoch: float | None) -> str | None:
    """`coreroll.wire.times.iso_time`, None for None (a field not known)."""
    return None if epoch is None else wire_time(epoch)


def _wire_value(kind: str, value: Any) -> Any:
    """A producer's value as the document carries it (times from epoch seconds)."""
    if value is None:
        return None
    if kind == TIME:
        return iso_time(value)
    if kind == EPOCH:
        return int(value)
    if kind == FRACTION:
        return round(float(value), 4)
    return value


def status_document(values: Mapping[str, Any], fields: tuple[Field, ...] | None = None) -> dict[str, Any]:
    """The document from producer values keyed by field path (times as epoch seconds); a field
    with no value is null. KeyError for a path the table does not have (a typo writes nothing)."""
    fields = STATUS_FIELDS if fields is None else fields
    known = {f.path for f in fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"not status fields: {', '.join(unknown)}")
    doc: dict[str, Any] = {}
    for f in fields:
        section = f.section
        target = doc if section is None else doc.setdefault(section, {})
        target[f.name] = _wire_value(f.kind, values.get(f.path))
    return doc


def encode_status(doc: dict[str, Any]) -> bytes:
    """Compact JSON, keys in table order."""
    return json.dumps(doc, separators=(",", ":")).encode()


def sample_document(machine_id: str, **overrides: Any) -> dict[str, Any]:
    """A well-formed document for fixtures: each field's `sample`, then `overrides` by field name
    (the part after the section: `progress=0.5` sets update.progress) or a whole section by its
    name (`reboot={...}`). KeyError for an unknown name."""
    fields = STATUS_FIELDS
    by_name = {f.name: f for f in fields}
    doc: dict[str, Any] = {}
    for f in fields:
        value = f.sample
        if isinstance(value, str):
            value = value.format(machine_id=machine_id)
        elif isinstance(value, tuple):
            value = [dict(item) for item in value]
        target = doc if f.section is None else doc.setdefault(f.section, {})
        target[f.name] = value
    for name, value in overrides.items():
        if name in SECTIONS:  # a whole section, e.g. reboot={...} or a hostile update="x"
            doc[name] = value
            continue
        if name not in by_name:
            raise KeyError(f"no status field named {name!r}")
        f = by_name[name]
        (doc if f.section is None else doc[f.section])[f.name] = value
    return doc


def encode_alive(boot_id: str | None, hostname: str | None) -> bytes:
    """The alive key's value: which boot of which host is keeping the lease."""
    return json.dumps({"boot_id": boot_id, "hostname": hostname}).encode()
