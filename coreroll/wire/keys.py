"""Every etcd key coreroll reads or writes, spelled once (the design's "Node state in etcd" contract).

coreroll's own keys (etcd v3):
- `coreroll/v1/nodes/<machine-id>/status`: the node status document (`coreroll.wire.status`)
- `coreroll/v1/nodes/<machine-id>/alive`: under a lease; gone means the node is offline
- `coreroll/v1/commands/<machine-id>/<sortable-id>`: a command for the node's agent
- `coreroll/v1/audit/<sortable-id>`: one record per intervention

Other programs' keys, byte-compatible with them (tests/wire/test_golden.py pins the bytes):
- locksmith: `coreos.com/updateengine/rebootlock/semaphore` (default group) and
  `coreos.com/updateengine/rebootlock/groups/<QueryEscape(g)>/semaphore`; the v2 store puts a
  `/` in front. The escaping lives in `coreroll.locks.keys`.
- airlock (read only): `com.coreos.airlock/groups/<QueryEscape(g)>/v1/semaphore`.
"""

from __future__ import annotations

NODES_PREFIX = "coreroll/v1/nodes/"
STATUS_LEAF = "status"
ALIVE_LEAF = "alive"
COMMANDS_PREFIX = "coreroll/v1/commands/"
AUDIT_PREFIX = "coreroll/v1/audit/"

LOCK_PREFIX = "coreos.com/updateengine/rebootlock/"
LOCK_SEMAPHORE_LEAF = "semaphore"
LOCK_DEFAULT_KEY = LOCK_PREFIX + LOCK_SEMAPHORE_LEAF
LOCK_GROUPS_PREFIX = LOCK_PREFIX + "groups/"

AIRLOCK_PREFIX = "com.coreos.airlock/groups/"
AIRLOCK_SEMAPHORE_LEAF = "v1/semaphore"


def status_key(machine_id: str) -> str:
    return f"{NODES_PREFIX}{machine_id}/{STATUS_LEAF}"


def alive_key(machine_id: str) -> str:
    return f"{NODES_PREFIX}{machine_id}/{ALIVE_LEAF}"


def command_prefix(machine_id: str) -> str:
    """Where `machine_id`'s commands live (with the trailing slash: a prefix for get_prefix)."""
    return f"{COMMANDS_PREFIX}{machine_id}/"


def command_key(machine_id: str, command_id: str) -> str:
    return f"{COMMANDS_PREFIX}{machine_id}/{command_id}"


def audit_key(record_id: str) -> str:
    return AUDIT_PREFIX + record_id


def lock_group_key(escaped_group: str) -> str:
    """locksmith's semaphore key of a group whose name is already QueryEscaped."""
    return f"{LOCK_GROUPS_PREFIX}{escaped_group}/{LOCK_SEMAPHORE_LEAF}"


def airlock_group_key(escaped_group: str) -> str:
    """airlock's semaphore key of a group whose name is already QueryEscaped."""
    return f"{AIRLOCK_PREFIX}{escaped_group}/{AIRLOCK_SEMAPHORE_LEAF}"
