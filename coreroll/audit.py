"""The audit log: one etcd v3 key per intervention, `coreroll/v1/audit/<sortable-id>`.

- `await append_audit(config, action, target, result, by=None, client=None) -> key` writes
  a `coreroll.wire.records.AuditRecord`: `{"at", "by": "user@host", "action", "target", "result"}`. Pass a connected aetcd
  `client` to reuse it; otherwise one is opened (and closed) with `connect_v3(config)`. The record
  always goes to the v3 keyspace, also when locks are kept through the v2 API.
- `await read_audit(config, limit=100, client=None) -> list[dict]`: the newest `limit` records,
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

import aetcd
from aetcd import rpc
from aetcd.utils import prefix_range_end

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
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
    client: aetcd.Client | None = None,
) -> str:
    record = AuditRecord(action, target, result, by or current_user())
    key = audit_key(new_sortable_id())
    own = client is None
    active = client if client is not None else await connect_v3(config)
    try:
        await active.put(key.encode(), record.encode())
    finally:
        if own:
            await active.close()
    return key


async def read_audit(
    config: EtcdConfig, limit: int = 100, *, client: aetcd.Client | None = None
) -> list[dict[str, Any]]:
    own = client is None
    active = client if client is not None else await connect_v3(config)
    try:
        await active.connect()
        prefix = AUDIT_PREFIX.encode()
        request = rpc.RangeRequest(
            key=prefix,
            range_end=prefix_range_end(prefix),
            limit=limit,
            sort_order=rpc.RangeRequest.DESCEND,
            sort_target=rpc.RangeRequest.KEY,
        )
        reply = await active.kvstub.Range(request, timeout=config.timeout, metadata=active.metadata)
    finally:
        if own:
            await active.close()
    records: list[dict[str, Any]] = []
    for kv in reversed(reply.kvs):
        record_id = parse_audit_key(kv.key.decode("utf-8", "replace"))
        if record_id is None:  # under the prefix but not a record key (a nested path)
            continue
        try:
            record = json.loads(kv.value)
        except ValueError:
            record = {"error": f"{kv.key.decode()}: not JSON", "raw": kv.value.decode("utf-8", "replace")}
        if not isinstance(record, dict):
            record = {"error": f"{kv.key.decode()}: not a JSON object"}
        records.append({"id": record_id, **record})
    return records
