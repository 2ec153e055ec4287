"""Rows -> the JSON objects of docs/api.md (channel, release, group, instance, activity, history).

Times are stored as epoch seconds and leave as ISO 8601 UTC with a ``Z``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from coreroll.omaha.codes import InstanceStatus
from coreroll.wire.times import iso_time


class Row(Protocol):
    """A row read by column name: SQLAlchemy's RowMapping (its keys may also be columns) or a dict."""

    def __getitem__(self, key: str, /) -> Any: ...


def iso(ts: float | None) -> str | None:
    return None if ts is None else iso_time(ts)


def status_name(code: int) -> str:
    try:
        return InstanceStatus(code).name
    except ValueError:
        return "Undefined"


def status_code(name: str) -> int | None:
    """``"OnHold"`` (any case) -> 8; None for an unknown name."""
    for member in InstanceStatus:
        if member.name.lower() == name.lower():
            return int(member)
    return None


def channel_json(row: Mapping[str, Any], pinned: str | None = None) -> dict[str, Any]:
    """``pinned``: the version the channel is pinned at (the upstream sync never moves it), or None."""
    return {
        "name": row["name"],
        "version": row["version"],
        "updated_at": iso(row["updated_at"]),
        "pinned": pinned,
    }


def release_json(
    row: Mapping[str, Any],
    base_url: str,
    channels: list[str],
    *,
    files: Sequence[dict[str, Any]] = (),
    floor: bool = False,
    floor_reason: str | None = None,
) -> dict[str, Any]:
    """``files``: each file's JSON with its ``kind`` ("payload" or "extra"). The top-level file
    fields describe the release's first payload (the only one before boards existed)."""
    payloads = [{k: v for k, v in f.items() if k != "kind"} for f in files if f["kind"] == "payload"]
    first = next(
        (p for p in payloads if (p["filename"], p["sha256"]) == (row["filename"], row["sha256"])), None
    )
    legacy_url = f"{base_url.rstrip('/')}/packages/{row['version']}/{row['filename']}"
    return {
        "version": row["version"],
        "size": row["size"],
        "sha256": row["sha256"],
        "sha1": row["sha1"],
        "filename": row["filename"],
        "url": first["url"] if first else legacy_url,
        "signed": bool(row["signed"]),
        "created_at": iso(row["created_at"]),
        "channels": channels,
        "floor": floor,
        "floor_reason": floor_reason,
        "payloads": payloads,
        "extras": [{k: v for k, v in f.items() if k != "kind"} for f in files if f["kind"] == "extra"],
    }


POLICY_COLUMNS = (
    "updates_enabled",
    "max_updates_per_period",
    "period_seconds",
    "max_concurrent",
    "update_timeout_seconds",
    "safe_mode",
    "office_hours",
    "timezone",
)


def group_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "track": row["track"],
        "channel": row["channel"],
        "policy": {key: row[key] for key in POLICY_COLUMNS},
        "rollout_in_progress": bool(row["rollout_in_progress"]),
        "halted_reason": row["halted_reason"],
    }


def instance_json(row: Row, now: float, stale_window: float) -> dict[str, Any]:
    return {
        "machine_id": row["machine_id"],
        "ip": row["ip"],
        "version": row["version"],
        "track": row["track"],
        "group": row["group_id"],
        "status": status_name(row["status"]),
        "status_reason": row["status_reason"],
        "last_check": iso(row["last_check"]),
        "last_update_version": row["last_update_version"],
        "update_in_progress": bool(row["update_in_progress"]),
        "oem": row["oem"],
        "alephversion": row["alephversion"],
        "board": row["board"],
        "stale": now - row["last_check"] > stale_window,
    }


def activity_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": iso(row["at"]),
        "kind": row["kind"],
        "severity": row["severity"],
        "group": row["group_id"],
        "channel": row["channel"],
        "version": row["version"],
        "instance": row["instance"],
        "message": row["message"],
    }


def history_json(row: Row) -> dict[str, Any]:
    event = None if row["event_type"] is None else f"{row['event_type']}/{row['event_result']}"
    return {
        "at": iso(row["at"]),
        "status": status_name(row["status"]),
        "version": row["version"],
        "reason": row["reason"],
        "event": event,
        "errorcode": shown_errorcode(row["errorcode"]),
    }


def stored_errorcode(code: int | None) -> int | None:
    """An errorcode (unsigned 32-bit, flag bits included) as the history column holds it: signed 32-bit."""
    return None if code is None else code - 2**32 if code >= 2**31 else code


def shown_errorcode(stored: int | None) -> int | None:
    """The errorcode update_engine meant, from the column (also rows written unsigned, before signed storage)."""
    return None if stored is None else int(stored) & 0xFFFFFFFF
