"""The node status report an agent writes to its status key (the "Node state in etcd" contract):
typed producer arguments mapped onto the field table in `coreroll.wire.status`, which lays the
document out; the keys themselves are `coreroll.wire.keys`.

The fields, their kinds and their order are `coreroll.wire.status.STATUS_FIELDS` (every key
always present; unknown values null). `holds_lock` is null from `coreroll report`: locksmithd
holds a real host's lock.

Public API (the first four re-exported from `coreroll.wire`): `NODES_PREFIX`, `status_key(machine_id)`,
`alive_key(machine_id)`, `iso_time(epoch)`,
`RebootInfo(strategy, lock_group, window, holds_lock)`, `build_status(..., disk, ...) -> dict` (the
agent's simulated disk), `build_report(..., version, active_partition, partitions, ...) -> dict` (the
same document from facts read elsewhere: `coreroll report` on a real host); both take
`more={path: value}` for fields added to the wire table since,
`encode_status(doc) -> bytes` (compact JSON, keys in table order), `encode_alive(boot_id,
hostname) -> bytes` (the alive key's value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coreroll.node.engine import EngineSnapshot
from coreroll.node.partitions import Disk
from coreroll.wire.keys import NODES_PREFIX, alive_key, status_key
from coreroll.wire.status import encode_alive, encode_status, iso_time, status_document

__all__ = [
    "NODES_PREFIX",
    "RebootInfo",
    "alive_key",
    "build_report",
    "build_status",
    "encode_alive",
    "encode_status",
    "iso_time",
    "status_key",
]


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
    more: Mapping[str, Any] | None = None,
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
        more=more,
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
    more: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document (layout: `coreroll.wire.status.STATUS_FIELDS`); `partitions` entries are
    {label, version, priority, tries, successful}."""
    values: dict[str, Any] = {
        "machine_id": machine_id,
        "hostname": hostname,
        "channel": channel,
        "server": server,
        "version": version,
        "active_partition": active_partition,
        "partitions": partitions,
        "update.status": str(update.status),
        "update.progress": update.progress,
        "update.new_version": update.new_version,
        "update.new_size": update.new_size,
        "update.last_checked_time": update.last_checked_time,
        "reboot.strategy": reboot.strategy,
        "reboot.lock_group": reboot.lock_group,
        "reboot.window": reboot.window,
        "reboot.holds_lock": reboot.holds_lock,
        "boot_id": boot_id,
        "booted_at": booted_at,
        "reported_at": reported_at,
        "last_command": last_command,
    }
    values.update(more or {})  # fields added to the table since: by path, e.g. {"update.eta": 90}
    return status_document(values)
