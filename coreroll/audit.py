"""The audit log: one etcd v3 key per intervention, `coreroll/v1/audit/<sortable-id>`.

- `await append_audit(config, action, target, result, by=None, kv=None) -> key` writes
  a `coreroll.wire.records.AuditRecord`, `{"at", "by": "user@host", "action", "target", "result"}`. Pass a connected v3
  `EtcdKV` (coreroll.etcd.port) as `kv` to reuse it; otherwise one is opened (and closed) with
  `open_kv(config, "v3")`. The record always goes to the v3 keyspace, also when locks are kept
  through the v2 API.
- `await read_audit(config, limit=100, kv=None) -> list[dict]`: the newest `limit` records,
  oldest first, each with its `id`.
- `new_sortable_id()`: ids that sort by creation time (19-digit epoch nanoseconds + random suffix).
- `current_user()`: "user@host".
"""

from __future__ import annotations

import getpass
import json
import secrets
import socket
import time
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV, open_kv
from coreroll.wire.keys import AUDIT_PREFIX, audit_key, parse_audit_key
from coreroll.wire.records import AuditRecord


def new_sortable_id() -> str:
    """Fixed-width epoch nanoseconds, so keys sort by time; the suffix breaks ties across writers."""
    return f"{time.time_ns():019d}-{secrets.token_hex(4)}"


def current_user() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def append_audit(
    config: EtcdConfig,
    action: str,
    target: str,
    result: str,
    by: str | None = None,
    *,
    kv: EtcdKV | None = None,
) -> str:
    record = AuditRecord(action, target, result, by or current_user())
    key = audit_key(new_sortable_id())
    active = kv if kv is not None else await open_kv(config, "v3")
    try:
        await active.put(key, record.encode())
    finally:
        if kv is None:
            await active.close()
    return key


async def read_audit(
    config: EtcdConfig, limit: int = 100, *, kv: EtcdKV | None = None
) -> list[dict[str, Any]]:
    active = kv if kv is not None else await open_kv(config, "v3")
    try:
        listing = await active.get_prefix(AUDIT_PREFIX, newest=limit)
    finally:
        if kv is None:
            await active.close()
    records: list[dict[str, Any]] = []
    for item in listing.kvs:
        record_id = parse_audit_key(item.key)
        if record_id is None:  # under the prefix but not a record key (a nested path)
            continue
        try:
            record = json.loads(item.value)
        except (ValueError, RecursionError):
            record = {"error": f"{item.key}: not JSON", "raw": item.value.decode("utf-8", "replace")}
        if not isinstance(record, dict):
            record = {"error": f"{item.key}: not a JSON object"}
        records.append({"id": record_id, **record})
    return records
