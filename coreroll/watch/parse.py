"""Reading the JSON values the dashboard sees (node status, commands, audit records, server objects)
without trusting them: every problem becomes a message naming the key (and field) that was wrong.

Numbers are bounded where they are read, so nothing downstream (formatting, sorting, gmtime) can
fail on them: times lie within years 1..9999 (`TIME_MIN..TIME_MAX`, finite), integers within Go's
int64, progress within 0..1. Python's json also reads NaN, Infinity and 4,000-digit integers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from coreroll.watch.typed_status import status_reader
from coreroll.watch.views import CommandView, InstanceView, NodeReport, PartitionView
from coreroll.wire import status as wire


class ValueFormatError(ValueError):
    """A value could not be read; `str()` names the key and what is wrong."""


TIME_MIN = -62135596800.0  # 0001-01-01T00:00:00Z: what datetime and time.gmtime can show
TIME_MAX = 253402300799.0  # 9999-12-31T23:59:59Z
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


def parse_time(value: object) -> float | None:
    """POSIX seconds from a number or an ISO 8601 string (naive = UTC); None for None/"".
    ValueError for anything else, and for a time outside years 1..9999 (NaN included)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{_short(value)} is not a time")
    if isinstance(value, int | float):
        if not TIME_MIN <= value <= TIME_MAX:  # False for NaN too; checked before float(10**400)
            raise ValueError(f"{_short(value)} is not a time within years 1..9999")
        return float(value)
    if isinstance(value, str):
        return _iso_time(value)
    raise ValueError(f"{_short(value)} is not a time")


def _short(value: object, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: values from outside may be megabytes long."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        digits = len(str(abs(value)))  # json caps integers at 4,300 digits, so str() works
        return f"an integer of {digits} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_fast_decode = msgspec.json.Decoder().decode


def load_object(raw: bytes, key: str) -> dict[str, Any]:
    try:
        # msgspec reads well-formed JSON 3x faster and gives what json gives (big integers too);
        # anything it refuses goes to json, which takes more (NaN, a BOM, lone surrogates,
        # UTF-16) or says what is wrong in its usual words
        data = _fast_decode(raw)
    except (msgspec.DecodeError, RecursionError):
        data = _load_slowly(raw, key)
    if not isinstance(data, dict):
        raise ValueFormatError(f"{key}: expected a JSON object, got {type(data).__name__}")
    return data


def _load_slowly(raw: bytes, key: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueFormatError(f"{key}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueFormatError(f"{key}: not valid JSON (nested too deeply)") from None


class _Fields:
    """Typed getters that note each problem instead of failing the whole report. The common case
    (right type) is one dict lookup and one type test: a fleet sends thousands of these a second."""

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _bad(self, path: str, value: object, expected: str) -> None:
        self.problems.append(f"field {path} is {_short(value)}, expected {expected}")

    def s(self, obj: dict[str, Any], name: str, path: str) -> str | None:
        value = obj.get(name)
        if value is None or type(value) is str:
            return value
        self._bad(path, value, "str")
        return None

    def i(self, obj: dict[str, Any], name: str, path: str) -> int | None:
        value = obj.get(name)
        if value is None or (type(value) is int and INT_MIN <= value <= INT_MAX):
            return value
        self._bad(path, value, "an integer within int64")
        return None

    def fraction(self, obj: dict[str, Any], name: str, path: str) -> float | None:
        """A number from 0 to 1 (download progress)."""
        value = obj.get(name)
        if value is None:
            return None
        if type(value) in (int, float) and 0 <= value <= 1:  # False for NaN
            return float(value)
        self._bad(path, value, "a number from 0 to 1")
        return None

    def b(self, obj: dict[str, Any], name: str, path: str) -> bool | None:
        value = obj.get(name)
        if value is None or type(value) is bool:
            return value
        self._bad(path, value, "true or false")
        return None

    def d(self, obj: dict[str, Any], name: str, path: str) -> dict[str, Any] | None:
        value = obj.get(name)
        if value is None or type(value) is dict:
            return value
        self._bad(path, value, "an object")
        return None

    def lst(self, obj: dict[str, Any], name: str, path: str) -> list[Any] | None:
        value = obj.get(name)
        if value is None or type(value) is list:
            return value
        self._bad(path, value, "a list")
        return None

    def time(self, obj: dict[str, Any], name: str, path: str) -> float | None:
        value = obj.get(name)
        try:
            return parse_time(value)
        except ValueError:
            self._bad(path, value, "a time within years 1..9999")
            return None


def _partitions(f: _Fields, raw_parts: list[Any]) -> tuple[PartitionView, ...]:
    partitions: list[PartitionView] = []
    for index, part in enumerate(raw_parts):
        if type(part) is not dict or type(part.get("label")) is not str:
            f.problems.append(f"field partitions[{index}] has no label")
            continue
        where = f"partitions[{index}]."
        values = {
            attr: _CHECKED[p.kind](f, part, p.name, where + p.name)
            for attr, p in zip(_PARTITION_ATTRS, wire.PARTITION_FIELDS, strict=True)
        }
        partitions.append(PartitionView(**values))
    return tuple(partitions)


def parse_node_status(raw: bytes, key: str) -> tuple[NodeReport, str | None]:
    """Parse a node status value by the field table (`coreroll.wire.status.STATUS_FIELDS`).
    Returns the report (with every readable field) and a problem message naming the key and
    field, or None. Raises ValueFormatError if nothing is readable."""
    report = _well_formed_report(raw)
    if report is not None:
        return report, None
    return _checked_report(load_object(raw, key), key)


_BAD = object()  # a fast-path conversion's "not well formed": the field-by-field reader says why


def _time_or_bad(value: Any) -> Any:
    """A TIME value msgspec read: a string (ISO 8601; "" = unknown) or seconds already within
    TIME_MIN..TIME_MAX."""
    if type(value) is not str:
        return value
    if not value:
        return None
    try:
        return _iso_time(value)
    except ValueError:
        return _BAD


def _epoch_or_bad(value: Any) -> Any:
    """An EPOCH value msgspec read: as a TIME, but 0 means never."""
    value = _time_or_bad(value)
    return value if value is _BAD else value or None


def _version(value: Any) -> Any:
    return _real_version(value)  # (defined further down, with the other value helpers)


def _command(value: Any) -> Any:
    return _last_command(value)  # (defined further down)


# kind -> what the report holds for a decoded non-None value (_BAD: not well formed)
_FAST_CONVERT: dict[str, Callable[[Any], Any]] = {
    wire.VERSION: _version,
    wire.TIME: _time_or_bad,
    wire.EPOCH: _epoch_or_bad,
    wire.COMMAND: _command,
}

_reader: tuple[tuple[wire.Field, ...], Callable[[bytes], NodeReport | None]] | None = None


def _well_formed_report(raw: bytes) -> NodeReport | None:
    """The fast path for a report with every field of the expected type (nearly all of them):
    `coreroll.watch.typed_status`. None sends it to the field-by-field reader, which names what
    is wrong. Built from the table as it is now (again only if the table changed)."""
    global _reader
    if _reader is None or _reader[0] is not wire.STATUS_FIELDS:
        read = status_reader(
            wire.STATUS_FIELDS,
            wire.PARTITION_FIELDS,
            int_range=(INT_MIN, INT_MAX),
            time_range=(TIME_MIN, TIME_MAX),
            result=NodeReport,
            finish=_with_other_version,
            convert=_FAST_CONVERT,
            share=_shared_partition,
            bad=_BAD,
            no_extra=_NO_EXTRA,
        )
        _reader = (wire.STATUS_FIELDS, read)
    return _reader[1](raw)


def _with_other_version(report: NodeReport) -> NodeReport:
    """`report` with `other_version` set: the version of the partition that is not active."""
    active = report.active_partition
    for partition in report.partitions:  # (a loop: a generator costs more than two partitions)
        if partition.label != active:
            report.other_version = partition.version
            break
    return report


_NO_EXTRA: dict[str, Any] = {}  # shared by every report without extra fields (never mutated)
_SHARED_PARTITIONS: dict[Any, PartitionView] = {}
_SHARED_PARTITIONS_MAX = 4096


def _shared_partition(part: Any) -> PartitionView:
    """The PartitionView of a decoded partition (a hashable msgspec Struct of the values of
    `wire.PARTITION_FIELDS`), one instance shared by every report that has the same: a fleet has
    few distinct partitions (a label and a version or two per channel), and building a frozen
    record costs more than finding it. msgspec checked the types exactly (no true for 1), so
    equal keys mean equal views."""
    view = _SHARED_PARTITIONS.get(part)
    if view is None:
        if len(_SHARED_PARTITIONS) >= _SHARED_PARTITIONS_MAX:  # hostile variety: start over
            _SHARED_PARTITIONS.clear()
        values = msgspec.structs.astuple(part)
        view = _SHARED_PARTITIONS[part] = PartitionView(**dict(zip(_PARTITION_ATTRS, values, strict=True)))
    return view


@functools.lru_cache(maxsize=65536)  # boot times repeat report after report
def _iso_time(text: str) -> float:
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    seconds = stamp.timestamp()
    if not TIME_MIN <= seconds <= TIME_MAX:  # year 1 or 9999 with an offset: out of gmtime's range
        raise ValueError(f"{text!r} is not a time within years 1..9999")
    return seconds


def _checked_last_command(f: _Fields, obj: dict[str, Any], name: str, path: str) -> Any:
    return _last_command(f.d(obj, name, path))


def _checked_partitions(f: _Fields, obj: dict[str, Any], name: str, path: str) -> Any:
    return _partitions(f, f.lst(obj, name, path) or [])


def _checked_version(f: _Fields, obj: dict[str, Any], name: str, path: str) -> Any:
    return _real_version(f.s(obj, name, path))


def _checked_epoch(f: _Fields, obj: dict[str, Any], name: str, path: str) -> Any:
    return f.time(obj, name, path) or None  # 0 = never


# kind -> the field-by-field reader's getter: the value, or None with a problem noted
# Every partition field is a PartitionView attribute (none goes to `extra`): zip(..., strict=True)
# with PARTITION_FIELDS fails if one ever lacks an attr.
_PARTITION_ATTRS: tuple[str, ...] = tuple(f.attr for f in wire.PARTITION_FIELDS if f.attr is not None)
_CHECKED: dict[str, Any] = {
    wire.STR: _Fields.s,
    wire.VERSION: _checked_version,
    wire.INT: _Fields.i,
    wire.FRACTION: _Fields.fraction,
    wire.BOOL: _Fields.b,
    wire.TIME: _Fields.time,
    wire.EPOCH: _checked_epoch,
    wire.PARTITIONS: _checked_partitions,
    wire.COMMAND: _checked_last_command,
}


def _checked_report(data: dict[str, Any], key: str) -> tuple[NodeReport, str | None]:
    fields = wire.STATUS_FIELDS
    f = _Fields()
    sections: dict[str | None, dict[str, Any]] = {None: data}
    for field in fields:
        if field.section is not None and field.section not in sections:
            sections[field.section] = f.d(data, field.section, field.section) or {}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for field in fields:
        value = _CHECKED[field.kind](f, sections[field.section], field.name, field.path)
        if field.attr is None:
            extra[field.path] = value
        else:
            values[field.attr] = value
    report = _with_other_version(NodeReport(**values, extra=extra or _NO_EXTRA))
    problem = f"{key}: {'; '.join(f.problems)}" if f.problems else None
    return report, problem


def parse_command(raw: bytes, key: str, command_id: str) -> CommandView:
    try:
        data = load_object(raw, key)
    except ValueFormatError as exc:
        return CommandView(id=command_id, action=None, error=str(exc))
    args = data.get("args")
    try:
        at = parse_time(data.get("at"))
    except ValueError:
        at = None
    action = data.get("action")
    return CommandView(
        id=command_id,
        action=action if isinstance(action, str) else None,
        args=args if isinstance(args, dict) else {},
        by=data.get("by") if isinstance(data.get("by"), str) else None,
        at=at,
        error=None if isinstance(action, str) else f"{key}: no action",
    )


def opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    return str(value)


def opt_time(data: Mapping[str, Any], name: str) -> float | None:
    try:
        return parse_time(data.get(name))
    except ValueError:
        return None


def _real_version(version: str | None) -> str | None:
    """update_engine reports "0.0.0.0" (or "") when there is no new version."""
    return None if not version or version == "0.0.0.0" else version


def _last_command(data: dict[str, Any] | None) -> CommandView | None:
    if not data:
        return None
    try:
        at = parse_time(data.get("at"))
    except ValueError:
        at = None
    return CommandView(
        id=str(data.get("id") or ""),
        action=opt_str(data, "action"),
        at=at,
        result=opt_str(data, "result"),
    )


def instance_id(data: dict[str, Any]) -> str | None:
    """The machine id of a server instance object in a listing (None: not usable, skipped)."""
    return str(data["machine_id"]) if data.get("machine_id") else None


def parse_instance(data: dict[str, Any]) -> InstanceView:
    """An instance object from the server API (shapes in docs/api.md); unreadable fields are None."""
    progress = data.get("update_in_progress")
    stale = data.get("stale")
    return InstanceView(
        ip=opt_str(data, "ip"),
        version=opt_str(data, "version"),
        track=opt_str(data, "track"),
        group=opt_str(data, "group"),
        status=opt_str(data, "status"),
        status_reason=opt_str(data, "status_reason"),
        last_check=opt_time(data, "last_check"),
        update_in_progress=progress if isinstance(progress, bool) else None,
        stale=stale if isinstance(stale, bool) else None,
    )
