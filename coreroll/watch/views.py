"""The read-only records the dashboard renders: one node row, one lock group, one channel, ...

Every record is a frozen dataclass: the model replaces a record when something in it changes, so a
widget may cache by identity (`row is cached_row`) or by `row.rev`. Times are POSIX seconds (float);
anything unknown is None and is shown as `-`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Connection states of a source, as the header shows them.
CONNECTED = "connected"
CONNECTING = "connecting"
DOWN = "down"
ConnectionStatus = Literal["connected", "connecting", "down"]

# update_engine's status names, and the short words the table shows for them.
UPDATE_STATUS_SHORT = {
    "UPDATE_STATUS_IDLE": "idle",
    "UPDATE_STATUS_CHECKING_FOR_UPDATE": "checking",
    "UPDATE_STATUS_UPDATE_AVAILABLE": "available",
    "UPDATE_STATUS_DOWNLOADING": "downloading",
    "UPDATE_STATUS_VERIFYING": "verifying",
    "UPDATE_STATUS_FINALIZING": "finalizing",
    "UPDATE_STATUS_UPDATED_NEED_REBOOT": "need-reboot",
    "UPDATE_STATUS_REPORTING_ERROR_EVENT": "error",
    "UPDATE_STATUS_ATTEMPTING_ROLLBACK": "rollback",
}

# Node states (one word per row, for counts in the header and `state:` filters).
STATE_UNREADABLE = "unreadable"
STATE_ERROR = "error"
STATE_UPDATING = "updating"
STATE_REBOOT = "need-reboot"
STATE_ONHOLD = "onhold"
STATE_IDLE = "idle"
STATE_UNKNOWN = "unknown"
STATES = (
    STATE_UNREADABLE,
    STATE_ERROR,
    STATE_UPDATING,
    STATE_REBOOT,
    STATE_ONHOLD,
    STATE_IDLE,
    STATE_UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class PartitionView:
    """One USR partition as the node reported it (cgpt's attributes)."""

    label: str
    version: str | None = None
    priority: int | None = None
    tries: int | None = None
    successful: int | None = None


@dataclass(frozen=True, slots=True)
class CommandView:
    """A command waiting in `coreroll/v1/commands/<machine-id>/<id>` for the agent to run."""

    id: str
    action: str | None
    args: dict[str, object] = field(default_factory=dict)
    by: str | None = None
    at: float | None = None
    error: str | None = None  # the value was not readable; names the key


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One machine: its etcd status report, alive key and lock state merged with the server's instance.

    Merged columns (`channel`, `version`, `last_check`) prefer the node's own report and fall back to
    the server's view, so a node known only to the server still shows them.
    """

    machine_id: str
    hostname: str | None = None
    channel: str | None = None
    version: str | None = None
    active_partition: str | None = None  # "USR-A" | "USR-B"
    other_version: str | None = None  # version on the other USR partition
    partitions: tuple[PartitionView, ...] = ()
    update_status: str | None = None  # UPDATE_STATUS_* as reported
    update_progress: float | None = None  # 0.0 .. 1.0
    new_version: str | None = None
    new_size: int | None = None
    reboot_strategy: str | None = None
    lock_group: str | None = None  # the locksmith group this node locks in ("" = default group)
    holds_lock: bool | None = None  # from the lock state in etcd; else the node's own word
    lock_groups_held: tuple[str, ...] = ()  # LockGroupView.ident of every group it holds
    last_check: float | None = None
    online: bool | None = None  # alive key present; None if etcd never told us (server-only)
    boot_id: str | None = None
    booted_at: float | None = None
    reported_at: float | None = None
    # the server's view (None when the server does not know the node)
    group: str | None = None  # server group id
    server_status: str | None = None  # instance status name, e.g. "OnHold"
    server_status_reason: str | None = None
    server_version: str | None = None
    server_channel: str | None = None
    ip: str | None = None
    update_in_progress: bool | None = None
    server_stale: bool | None = None
    # derived
    state: str = STATE_UNKNOWN  # one of STATES
    status_since: float | None = None  # when `state`/statuses last changed (as first seen by us)
    error: str | None = None  # the node's status could not be read: names the key and what is wrong
    in_etcd: bool = False
    in_server: bool = False
    pending_commands: tuple[CommandView, ...] = ()
    rev: int = 0  # FleetModel.version when this row last changed

    @property
    def status_label(self) -> str:
        """Short status word for the table: `downloading`, `idle`, `OnHold`, `unreadable`, or `-`."""
        if self.error:
            return STATE_UNREADABLE
        if self.update_status:
            return UPDATE_STATUS_SHORT.get(self.update_status, self.update_status.lower())
        if self.server_status:
            return self.server_status
        return "-"

    @property
    def display_name(self) -> str:
        return self.hostname or self.machine_id


@dataclass(frozen=True, slots=True)
class HolderView:
    """One holder of a reboot lock. `since` is when the dashboard first saw it holding;
    `since_exact` is False when it already held the lock when we first looked (so it held longer)."""

    machine_id: str
    since: float | None
    since_exact: bool
    known: bool  # a node of the fleet (etcd status or server instance)
    online: bool | None
    stale: bool = False
    stale_reason: str | None = None  # "offline", "unknown to the fleet", "held for 2h 3m"


@dataclass(frozen=True, slots=True)
class LockGroupView:
    """A reboot-lock semaphore. `kind` is "v3", "v2" (locksmith) or "airlock" (FleetLock slots)."""

    group: str  # "" is locksmith's default group
    kind: str
    key: str
    available: int | None = None
    max: int | None = None
    holders: tuple[HolderView, ...] = ()
    error: str | None = None  # value unreadable: names the key; never overwritten by us

    @property
    def ident(self) -> str:
        """Unique id across kinds: the group name for locksmith, `airlock/<group>` for airlock."""
        return f"airlock/{self.group}" if self.kind == "airlock" else self.group

    @property
    def display_name(self) -> str:
        name = self.group or "default"
        return f"airlock/{name}" if self.kind == "airlock" else name

    @property
    def stale_holders(self) -> tuple[HolderView, ...]:
        return tuple(h for h in self.holders if h.stale)


@dataclass(frozen=True, slots=True)
class RolloutProgress:
    """How far the nodes of one channel or group have got to `version`."""

    name: str
    version: str | None
    total: int = 0
    done: int = 0  # running `version` (or newer)
    updating: int = 0  # downloading .. need-reboot
    failed: int = 0  # error or unreadable
    on_hold: int = 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A channel as the server offers it, with the fleet's progress towards its version."""

    name: str
    version: str | None
    updated_at: float | None
    progress: RolloutProgress


@dataclass(frozen=True, slots=True)
class ServerGroupView:
    """A server group (rollout policy). `paused` is `not updates_enabled`."""

    id: str
    name: str
    track: str | None
    channel: str | None
    updates_enabled: bool
    policy: dict[str, object]
    rollout_in_progress: bool
    halted_reason: str | None
    progress: RolloutProgress

    @property
    def paused(self) -> bool:
        return not self.updates_enabled


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One line of the event log. `source`: "server" (feed activity), "audit" (an intervention
    recorded in etcd) or "dashboard" (connection changes and notes from this process)."""

    id: str
    at: float
    kind: str
    message: str
    severity: str = "info"  # info | warning | error
    source: str = "server"
    group: str | None = None
    channel: str | None = None
    version: str | None = None
    instance: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """How one source (`etcd` or `server`) is doing. `last_ok` is when it last delivered data or
    confirmed it was up; while `status != "connected"` what the model shows from it is stale."""

    source: str
    status: ConnectionStatus = CONNECTING
    detail: str = ""
    last_ok: float | None = None
    since: float | None = None  # when `status` last changed

    @property
    def connected(self) -> bool:
        return self.status == CONNECTED


@dataclass(frozen=True, slots=True)
class StuckNode:
    machine_id: str
    state: str
    since: float
    seconds: float
