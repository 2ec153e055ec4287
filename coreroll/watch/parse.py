"""Reading the JSON values the dashboard sees (node status, commands, audit records, server objects)
without trusting them: every problem becomes a message naming the key (and field) that was wrong.

Numbers are bounded where they are read, so nothing downstream (formatting, sorting, gmtime) can
fail on them: times lie within years 1..9999 (`TIME_MIN..TIME_MAX`, finite), integers within Go's
int64, progress within 0..1. Python's json also reads NaN, Infinity and 4,000-digit integers.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from coreroll.watch.views import CommandView, InstanceView, NodeReport, PartitionView


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


def load_object(raw: bytes, key: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueFormatError(f"{key}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueFormatError(f"{key}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise ValueFormatError(f"{key}: expected a JSON object, got {type(data).__name__}")
    return data


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
        partitions.append(
            PartitionView(
                part["label"],
                f.s(part, "version", where + "version"),
                f.i(part, "priority", where + "priority"),
                f.i(part, "tries", where + "tries"),
                f.i(part, "successful", where + "successful"),
            )
        )
    return tuple(partitions)


def parse_node_status(raw: bytes, key: str) -> tuple[NodeReport, str | None]:
    """Parse a node status value. Returns the report (with every readable field) and a problem
    message naming the key and field, or None. Raises ValueFormatError if nothing is readable."""
    data = load_object(raw, key)
    report = _well_formed_report(data)
    if report is not None:
        return report, None
    return _checked_report(data, key)


_STR = (str, type(None))
_NUM = (int, float, type(None))
_TIME = (str, int, float, type(None))


def _int64(value: object) -> bool:
    return value is None or (type(value) is int and INT_MIN <= value <= INT_MAX)


def _number_time(value: object) -> bool:
    """Not a number, or a number that is a time we can show (NaN is not)."""
    return type(value) not in (int, float) or TIME_MIN <= value <= TIME_MAX  # type: ignore[operator]


def _well_formed_report(data: dict[str, Any]) -> NodeReport | None:
    """The fast path for a report with every field of the expected type (nearly all of them):
    a few type tests instead of a call per field. None sends it to the field-by-field reader,
    which names what is wrong."""
    get = data.get
    update = get("update")
    reboot = get("reboot")
    parts = get("partitions")
    if type(update) is not dict or type(reboot) is not dict or type(parts) is not list:
        return None
    uget = update.get
    rget = reboot.get
    hostname, channel, server, version = get("hostname"), get("channel"), get("server"), get("version")
    active, boot_id = get("active_partition"), get("boot_id")
    status, new_version = uget("status"), uget("new_version")
    strategy, window, group = rget("strategy"), rget("window"), rget("lock_group")
    for value in (
        hostname,
        channel,
        server,
        version,
        active,
        boot_id,
        status,
        new_version,
        strategy,
        window,
        group,
    ):
        if type(value) not in _STR:
            return None
    progress, new_size, checked = uget("progress"), uget("new_size"), uget("last_checked_time")
    holds = rget("holds_lock")
    if (
        type(progress) not in _NUM
        or type(checked) not in _NUM
        or (progress is not None and not 0 <= progress <= 1)  # also False for NaN
        or (checked is not None and not TIME_MIN <= checked <= TIME_MAX)
        or not _int64(new_size)
        or (holds is not None and type(holds) is not bool)
    ):
        return None
    booted, reported, last = get("booted_at"), get("reported_at"), get("last_command")
    if (
        type(booted) not in _TIME
        or type(reported) not in _TIME
        or not _number_time(booted)
        or not _number_time(reported)
        or (last is not None and type(last) is not dict)
    ):
        return None
    partitions = []
    other = None
    for part in parts:
        if type(part) is not dict:
            return None
        label, pversion = part.get("label"), part.get("version")
        priority, tries, ok = part.get("priority"), part.get("tries"), part.get("successful")
        if type(label) is not str or type(pversion) not in _STR:
            return None
        for value in (priority, tries, ok):
            if not _int64(value):
                return None
        partitions.append(PartitionView(label, pversion, priority, tries, ok))
        if label != active and other is None:
            other = pversion
    try:
        booted_at = (_iso_time(booted) if type(booted) is str else float(booted)) if booted else None
        reported_at = (
            (_iso_time(reported) if type(reported) is str else float(reported)) if reported else None
        )
    except ValueError:
        return None
    return NodeReport(
        hostname,
        channel,
        server,
        version,
        active,
        tuple(partitions),
        status,
        None if progress is None else float(progress),
        _real_version(new_version),
        new_size,
        float(checked) if checked else None,  # 0 = never checked
        strategy,
        window,
        group,
        holds,
        boot_id,
        booted_at,
        reported_at,
        _last_command(last),
        other,
    )


@functools.lru_cache(maxsize=65536)  # boot times repeat report after report
def _iso_time(text: str) -> float:
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    seconds = stamp.timestamp()
    if not TIME_MIN <= seconds <= TIME_MAX:  # year 1 or 9999 with an offset: out of gmtime's range
        raise ValueError(f"{text!r} is not a time within years 1..9999")
    return seconds


def _checked_report(data: dict[str, Any], key: str) -> tuple[NodeReport, str | None]:
    f = _Fields()
    update = f.d(data, "update", "update") or {}
    reboot = f.d(data, "reboot", "reboot") or {}
    partitions = _partitions(f, f.lst(data, "partitions", "partitions") or [])
    active = f.s(data, "active_partition", "active_partition")
    report = NodeReport(
        hostname=f.s(data, "hostname", "hostname"),
        channel=f.s(data, "channel", "channel"),
        server=f.s(data, "server", "server"),
        version=f.s(data, "version", "version"),
        active_partition=active,
        partitions=partitions,
        update_status=f.s(update, "status", "update.status"),
        update_progress=f.fraction(update, "progress", "update.progress"),
        new_version=_real_version(f.s(update, "new_version", "update.new_version")),
        new_size=f.i(update, "new_size", "update.new_size"),
        last_checked=f.time(update, "last_checked_time", "update.last_checked_time") or None,  # 0 = never
        reboot_strategy=f.s(reboot, "strategy", "reboot.strategy"),
        reboot_window=f.s(reboot, "window", "reboot.window"),
        lock_group=f.s(reboot, "lock_group", "reboot.lock_group"),
        holds_lock=f.b(reboot, "holds_lock", "reboot.holds_lock"),
        boot_id=f.s(data, "boot_id", "boot_id"),
        booted_at=f.time(data, "booted_at", "booted_at"),
        reported_at=f.time(data, "reported_at", "reported_at"),
        last_command=_last_command(f.d(data, "last_command", "last_command")),
        other_version=next((p.version for p in partitions if p.label != active), None),
    )
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


def opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    return str(value)


def opt_time(data: dict[str, Any], name: str) -> float | None:
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
