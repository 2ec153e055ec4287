"""What the sources tell the model: small immutable messages, applied with `FleetModel.apply(update)`.

Sources never touch the model directly; they hand these to a sink (any `Callable[[Update], None]`,
for example `UpdateBuffer.put`), so a UI can collect them from any thread or task and apply a batch
per repaint tick. Raw etcd values travel as bytes: the model parses them, so a corrupt value becomes
a row marked unreadable (naming the key) instead of an exception in a source.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """`coreroll/v1/nodes/<machine_id>/status` changed; `raw is None` means the key was deleted."""

    machine_id: str
    key: str
    raw: bytes | None


@dataclass(frozen=True, slots=True)
class NodeAlive:
    """`coreroll/v1/nodes/<machine_id>/alive` appeared (True) or vanished / lease expired (False)."""

    machine_id: str
    alive: bool


@dataclass(frozen=True, slots=True)
class NodeBatch:
    """Statuses and alive keys of many nodes, applied with one row rebuild per node: the rest of a
    big first listing, cut in pieces (`coreroll.watch.intake`). It only adds: `alive` names the
    machines whose alive key is present; `instances` are the server's objects for some of them
    (as in FeedSnapshot); nothing is removed (unlike EtcdSnapshot)."""

    statuses: tuple[NodeStatus, ...] = ()
    alive: frozenset[str] = frozenset()
    instances: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class NodeCommand:
    """`coreroll/v1/commands/<machine_id>/<command_id>` was written (raw) or done/deleted (None)."""

    machine_id: str
    command_id: str
    key: str
    raw: bytes | None


@dataclass(frozen=True, slots=True)
class LockState:
    """A lock semaphore's state. `kind`: "v3" | "v2" | "airlock". `removed`: the key is gone.
    `error` (value unreadable, naming the key) leaves available/max/holders None."""

    group: str
    kind: str
    key: str
    available: int | None = None
    max: int | None = None
    holders: tuple[str, ...] = ()
    error: str | None = None
    removed: bool = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """`coreroll/v1/audit/<id>`: `{at, by, action, target, result}` (raw bytes; parsed by the model)."""

    id: str
    key: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class EtcdSnapshot:
    """A full listing of everything the etcd source watches, taken at `revision`. Applying it
    replaces all etcd-derived state: what is not in it has vanished (resync after a gap)."""

    revision: int
    statuses: tuple[NodeStatus, ...] = ()
    alive: frozenset[str] = frozenset()
    commands: tuple[NodeCommand, ...] = ()
    locks: tuple[LockState, ...] = ()
    audit: tuple[AuditRecord, ...] = ()
    # lock kinds this snapshot covers: groups of these kinds not in `locks` have vanished
    lock_kinds: frozenset[str] = frozenset({"v3"})


@dataclass(frozen=True, slots=True)
class LockSnapshot:
    """A full listing of one lock kind's groups (used by sources that list locks separately,
    e.g. the v2 lock store): groups of `kind` not in `locks` have vanished."""

    kind: str
    locks: tuple[LockState, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """The server's state: GET channels, groups, instances and recent activity (JSON objects as the
    API returns them). Applying it replaces all server-derived state."""

    channels: tuple[dict[str, Any], ...] = ()
    groups: tuple[dict[str, Any], ...] = ()
    instances: tuple[dict[str, Any], ...] = ()
    activity: tuple[dict[str, Any], ...] = ()
    last_id: str | None = None


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One SSE event from `/api/v1/feed`: kind "instance" | "channel" | "group" | "activity"."""

    kind: str
    id: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Connection:
    """A source's connection state changed (see views.ConnectionState)."""

    source: str  # "etcd" | "server"
    status: str  # "connected" | "connecting" | "down"
    detail: str = ""
    at: float | None = None  # when it happened (source's clock); None = the model's now


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the event log from this process (e.g. an action's outcome)."""

    message: str
    severity: str = "info"
    kind: str = "Note"


Update = (
    NodeStatus
    | NodeAlive
    | NodeBatch
    | NodeCommand
    | LockState
    | AuditRecord
    | EtcdSnapshot
    | LockSnapshot
    | FeedSnapshot
    | FeedEvent
    | Connection
    | Note
)
Sink = Callable[[Update], None]


class UpdateBuffer:
    """A thread-safe queue of updates between sources and a UI: sources `put`, the UI `drain`s once
    per tick and applies the batch. `on_first` (if given) is called when the buffer goes from empty
    to non-empty, e.g. to wake the UI (it runs in the putting thread/task)."""

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self._items: deque[Update] = deque()
        self._lock = threading.Lock()
        self.on_first = on_first

    def put(self, update: Update) -> None:
        with self._lock:
            was_empty = not self._items
            self._items.append(update)
        if was_empty and self.on_first is not None:
            self.on_first()

    def drain(self) -> list[Update]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)
