"""Every etcd key coreroll reads or writes, spelled once (the design's "Node state in etcd" contract).

coreroll's own keys (etcd v3):
- `coreroll/v1/nodes/<machine-id>/status`: the node status document (`coreroll.wire.status`)
- `coreroll/v1/nodes/<machine-id>/alive`: under a lease; gone means the node is offline
- `coreroll/v1/commands/<machine-id>/<sortable-id>`: a command for the node's agent
- `coreroll/v1/audit/<sortable-id>`: one record per intervention

Other programs' keys, byte-compatible with them (tests/wire/test_golden.py pins the bytes):
- locksmith: `coreos.com/updateengine/rebootlock/semaphore` (default group) and
  `coreos.com/updateengine/rebootlock/groups/<QueryEscape(g)>/semaphore`; the v2 store puts a
  `/` in front. Their parser lives in `coreroll.locks.keys`.
- airlock (read only): `com.coreos.airlock/groups/<QueryEscape(g)>/v1/semaphore`.

Each key has its builder and its parser here, side by side, and every reader uses the parser: a
key is ours only with every segment non-empty and no extra `/` (a machine id, command id or record
id never holds one), so the agent, the dashboard and the audit reader agree on which keys count.
Go's url.QueryEscape (locksmith's and airlock's group names) is `query_escape` / `query_unescape`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

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


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def query_escape(text: str) -> str:
    """Go's url.QueryEscape: keeps `A-Z a-z 0-9 - _ . ~`, a space as `+`, every other byte `%XX`."""
    return quote_plus(text, safe="")


def query_unescape(text: str) -> str:
    """Go's url.QueryUnescape; raises ValueError on a malformed %-escape, as Go does."""
    if _BAD_ESCAPE.search(text):
        raise ValueError(f"invalid URL escape in {text!r}")
    return unquote_plus(text, errors="strict")


def _segments(key: str, prefix: str, count: int) -> list[str] | None:
    """The `count` non-empty `/`-separated segments after `prefix`, or None."""
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split("/")
    return parts if len(parts) == count and all(parts) else None


@dataclass(frozen=True, slots=True)
class NodeKey:
    machine_id: str
    leaf: str  # STATUS_LEAF or ALIVE_LEAF


def parse_node_key(key: str) -> NodeKey | None:
    """`coreroll/v1/nodes/<machine-id>/status|alive` -> NodeKey; None for any other key."""
    parts = _segments(key, NODES_PREFIX, 2)
    if parts is None or parts[1] not in (STATUS_LEAF, ALIVE_LEAF):
        return None
    return NodeKey(parts[0], parts[1])


def parse_command_key(key: str) -> tuple[str, str] | None:
    """`coreroll/v1/commands/<machine-id>/<command-id>` -> (machine id, command id); None otherwise."""
    parts = _segments(key, COMMANDS_PREFIX, 2)
    return (parts[0], parts[1]) if parts is not None else None


def parse_audit_key(key: str) -> str | None:
    """`coreroll/v1/audit/<record-id>` -> the record id; None otherwise."""
    parts = _segments(key, AUDIT_PREFIX, 1)
    return parts[0] if parts is not None else None


def airlock_key(group: str) -> str:
    """airlock's semaphore key of `group`."""
    return airlock_group_key(query_escape(group))


def parse_airlock_key(key: str) -> str | None:
    """airlock's semaphore key -> its group name (the raw segment when it is not a valid escape:
    named, not hidden); None for any other key."""
    if not key.endswith("/" + AIRLOCK_SEMAPHORE_LEAF):
        return None
    parts = _segments(key[: -len(AIRLOCK_SEMAPHORE_LEAF) - 1], AIRLOCK_PREFIX, 1)
    if parts is None:
        return None
    try:
        return query_unescape(parts[0])
    except ValueError:  # UnicodeDecodeError included
        return parts[0]
