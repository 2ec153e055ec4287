"""The node status report an agent writes to `coreroll/v1/nodes/<machine-id>/status` (DESIGN.md,
"Node state in etcd"), and the keys it lives under.

Shape (every key always present; unknown values are null):

    {"machine_id", "hostname", "channel", "server", "version", "active_partition": "USR-A"|"USR-B",
     "partitions": [{"label", "version", "priority", "tries", "successful"}],
     "update": {"status": "UPDATE_STATUS_*", "progress": 0..1, "new_version", "new_size",
                "last_checked_time": epoch seconds (int, as update_engine's GetStatus)},
     "reboot": {"strategy", "lock_group", "window": "Thu 23:00 1h30m" | null,
                "holds_lock": bool | null (null from `coreroll report`: locksmithd holds the lock)},
     "boot_id", "booted_at", "reported_at",          # ISO 8601 UTC with "Z", the node's clock
     "last_command": {"id", "action", "result", "at"} | null}   # extra: the last command run

Public API: `NODES_PREFIX`, `status_key(machine_id)`, `alive_key(machine_id)`, `iso_time(epoch)`,
`RebootInfo(strategy, lock_group, window, holds_lock)`, `build_status(..., disk, ...) -> dict` (the
agent's simulated disk), `build_report(..., version, active_partition, partitions, ...) -> dict` (the
same document from facts read elsewhere: `coreroll report` on a real host),
`encode_status(doc) -> bytes` (compact JSON, keys in DESIGN.md order), `encode_alive(boot_id,
hostname) -> bytes` (the alive key's value).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coreroll.node.engine import EngineSnapshot
from coreroll.node.partitions import Disk

NODES_PREFIX = "coreroll/v1/nodes/"


def status_key(machine_id: str) -> str:
    return f"{NODES_PREFIX}{machine_id}/status"


def alive_key(machine_id: str) -> str:
    return f"{NODES_PREFIX}{machine_id}/alive"


def iso_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RebootInfo:
    strategy: str
    lock_group: str
    window: str | None
    holds_lock: bool | None  # None: not known to the reporter (locksmithd holds real hosts' locks)


def build_status(
    *,
    machine_id: str,
    hostname: str,
    channel: str,
    server: str,
    disk: Disk,
    update: EngineSnapshot,
    reboot: RebootInfo,
    boot_id: str,
    booted_at: float,
    reported_at: float,
    last_command: dict[str, Any] | None = None,
) -> dict[str, Any]:
    active = disk.active
    return build_report(
        machine_id=machine_id,
        hostname=hostname,
        channel=channel,
        server=server,
        version=active.version,
        active_partition=active.label,
        partitions=[
            {
                "label": p.label,
                "version": p.version,
                "priority": p.priority,
                "tries": p.tries,
                "successful": p.successful,
            }
            for p in disk.table()
        ],
        update=update,
        reboot=reboot,
        boot_id=boot_id,
        booted_at=booted_at,
        reported_at=reported_at,
        last_command=last_command,
    )


def build_report(
    *,
    machine_id: str,
    hostname: str | None,
    channel: str | None,
    server: str | None,
    version: str | None,
    active_partition: str | None,
    partitions: list[dict[str, Any]],
    update: EngineSnapshot,
    reboot: RebootInfo,
    boot_id: str | None,
    booted_at: float | None,
    reported_at: float,
    last_command: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document; `partitions` entries are {label, version, priority, tries, successful}."""
    return {
        "machine_id": machine_id,
        "hostname": hostname,
        "channel": channel,
        "server": server,
        "version": version,
        "active_partition": active_partition,
        "partitions": partitions,
        "update": {
            "status": str(update.status),
            "progress": round(float(update.progress), 4),
            "new_version": update.new_version,
            "new_size": update.new_size,
            "last_checked_time": int(update.last_checked_time),
        },
        "reboot": {
            "strategy": reboot.strategy,
            "lock_group": reboot.lock_group,
            "window": reboot.window,
            "holds_lock": reboot.holds_lock,
        },
        "boot_id": boot_id,
        "booted_at": iso_time(booted_at),
        "reported_at": iso_time(reported_at),
        "last_command": last_command,
    }


def encode_status(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def encode_alive(boot_id: str | None, hostname: str | None) -> bytes:
    """The alive key's value: which boot of which host is keeping the lease."""
    return json.dumps({"boot_id": boot_id, "hostname": hostname}).encode()
