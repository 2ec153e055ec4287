"""Read-only view of airlock's FleetLock semaphores (etcd v3).

airlock keeps `com.coreos.airlock/groups/<QueryEscape(group)>/v1/semaphore` =
`{"total_slots":N,"holders":[...]}` (no "available" field). `await read_airlock_groups(config)`
returns `{group: AirlockSemaphore(total_slots, holders)}`; a value that is not that JSON raises
`SemaphoreFormatError` naming the key. coreroll never writes airlock's keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV, open_kv
from coreroll.locks.semaphore import SemaphoreFormatError, in_int64
from coreroll.wire.keys import AIRLOCK_PREFIX, airlock_key, parse_airlock_key

__all__ = ["AIRLOCK_PREFIX", "AirlockSemaphore", "airlock_key", "parse_airlock", "read_airlock_groups"]


@dataclass
class AirlockSemaphore:
    total_slots: int
    holders: list[str] = field(default_factory=list)

    @property
    def available(self) -> int:
        return self.total_slots - len(self.holders)


def parse_airlock(raw: bytes, key: str) -> AirlockSemaphore:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise SemaphoreFormatError(key, "invalid JSON") from exc
    except RecursionError as exc:
        raise SemaphoreFormatError(key, "invalid JSON (nested too deeply)") from exc
    if not isinstance(doc, dict):
        raise SemaphoreFormatError(key, "expected a JSON object")
    slots = doc.get("total_slots")
    if not isinstance(slots, int) or isinstance(slots, bool):
        raise SemaphoreFormatError(key, '"total_slots" missing or not an integer')
    if not in_int64(slots):
        raise SemaphoreFormatError(key, '"total_slots" is out of the int64 range')
    holders = doc.get("holders") or []
    if not isinstance(holders, list) or not all(isinstance(h, str) for h in holders):
        raise SemaphoreFormatError(key, '"holders" must be a list of strings')
    return AirlockSemaphore(slots, list(holders))


async def read_airlock_groups(config: EtcdConfig, *, kv: EtcdKV | None = None) -> dict[str, AirlockSemaphore]:
    active = kv if kv is not None else await open_kv(config, "v3")
    try:
        listing = await active.get_prefix(AIRLOCK_PREFIX)
    finally:
        if kv is None:
            await active.close()
    groups: dict[str, AirlockSemaphore] = {}
    for item in listing.kvs:
        key = item.key
        group = parse_airlock_key(key)
        if group is None:
            continue
        groups[group] = parse_airlock(item.value, key)
    return dict(sorted(groups.items()))
