"""Reading the JSON values the dashboard sees (node status, commands, audit records, server objects)
without trusting them: every problem becomes a message naming the key (and field) that was wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coreroll.watch.views import CommandView, PartitionView


class ValueFormatError(ValueError):
    """A value could not be read; `str()` names the key and what is wrong."""


def parse_time(value: object) -> float | None:
    """POSIX seconds from a number or an ISO 8601 string (naive = UTC); None for None/""."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        stamp = datetime.fromisoformat(value.strip())
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    raise ValueError(f"{value!r} is not a time")


def load_object(raw: bytes, key: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueFormatError(f"{key}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueFormatError(f"{key}: expected a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True, slots=True)
class NodeReport:
    """The parts of a node's status report the dashboard uses."""

    hostname: str | None = None
    channel: str | None = None
    server: str | None = None
    version: str | None = None
    active_partition: str | None = None
    partitions: tuple[PartitionView, ...] = ()
    update_status: str | None = None
    update_progress: float | None = None
    new_version: str | None = None
    new_size: int | None = None
    last_checked: float | None = None
    reboot_strategy: str | None = None
    lock_group: str | None = None
    holds_lock: bool | None = None
    boot_id: str | None = None
    booted_at: float | None = None
    reported_at: float | None = None

    @property
    def other_version(self) -> str | None:
        for part in self.partitions:
            if part.label != self.active_partition:
                return part.version
        return None


class _Fields:
    """Typed getters that remember the first problem instead of failing the whole report."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.problems: list[str] = []

    def get(self, obj: dict[str, Any], name: str, kind: type | tuple[type, ...], path: str) -> Any:
        value = obj.get(name)
        if value is None:
            return None
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.problems.append(f"field {path} is {value!r}, expected a number")
            return None
        if not isinstance(value, kind):
            expected = "a number" if kind in ((int, float), int, float) else getattr(kind, "__name__", "?")
            self.problems.append(f"field {path} is {value!r}, expected {expected}")
            return None
        return value

    def time(self, obj: dict[str, Any], name: str, path: str) -> float | None:
        try:
            return parse_time(obj.get(name))
        except ValueError:
            self.problems.append(f"field {path} is {obj.get(name)!r}, expected a time")
            return None

    def obj(self, obj: dict[str, Any], name: str) -> dict[str, Any]:
        value = self.get(obj, name, dict, name)
        return value or {}


def parse_node_status(raw: bytes, key: str) -> tuple[NodeReport, str | None]:
    """Parse a node status value. Returns the report (with every readable field) and a problem
    message naming the key and field, or None. Raises ValueFormatError if nothing is readable."""
    data = load_object(raw, key)
    f = _Fields(key)
    update = f.obj(data, "update")
    reboot = f.obj(data, "reboot")
    partitions: list[PartitionView] = []
    raw_parts = f.get(data, "partitions", list, "partitions") or []
    for index, part in enumerate(raw_parts):
        if not isinstance(part, dict) or not isinstance(part.get("label"), str):
            f.problems.append(f"field partitions[{index}] has no label")
            continue
        partitions.append(
            PartitionView(
                label=part["label"],
                version=f.get(part, "version", str, f"partitions[{index}].version"),
                priority=f.get(part, "priority", int, f"partitions[{index}].priority"),
                tries=f.get(part, "tries", int, f"partitions[{index}].tries"),
                successful=f.get(part, "successful", int, f"partitions[{index}].successful"),
            )
        )
    progress = f.get(update, "progress", (int, float), "update.progress")
    report = NodeReport(
        hostname=f.get(data, "hostname", str, "hostname"),
        channel=f.get(data, "channel", str, "channel"),
        server=f.get(data, "server", str, "server"),
        version=f.get(data, "version", str, "version"),
        active_partition=f.get(data, "active_partition", str, "active_partition"),
        partitions=tuple(partitions),
        update_status=f.get(update, "status", str, "update.status"),
        update_progress=float(progress) if progress is not None else None,
        new_version=_real_version(f.get(update, "new_version", str, "update.new_version")),
        new_size=f.get(update, "new_size", int, "update.new_size"),
        last_checked=f.time(update, "last_checked_time", "update.last_checked_time"),
        reboot_strategy=f.get(reboot, "strategy", str, "reboot.strategy"),
        lock_group=f.get(reboot, "lock_group", str, "reboot.lock_group"),
        holds_lock=f.get(reboot, "holds_lock", bool, "reboot.holds_lock"),
        boot_id=f.get(data, "boot_id", str, "boot_id"),
        booted_at=f.time(data, "booted_at", "booted_at"),
        reported_at=f.time(data, "reported_at", "reported_at"),
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
