"""The read-only records the dashboard renders: one node row, one lock group, one channel, ...

Every record is immutable (frozen dataclasses; NodeRow, NodeReport and InstanceView by convention
only, as they are built thousands of times a second): the model replaces a record when something in
it changes, so a widget may cache by identity (`row is cached_row`) or by `row.rev`. Times are POSIX
seconds (float); anything unknown is None and is shown as `-`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from coreroll.wire import status as wire

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
    result: str | None = None  # set for the node's `last_command` (what running it gave)


@dataclass(slots=True)
class NodeReport:
    """A node's own status report (etcd), one attribute per field of the wire table
    (`coreroll.wire.status.STATUS_FIELDS`, `Field.attr`), or in `extra` by path. Immutable by
    convention (not frozen: a fleet sends thousands a second and frozen construction costs a third
    more)."""

    hostname: str | None = None
    channel: str | None = None
    server: str | None = None
    version: str | None = None
    active_partition: str | None = None
    partitions: tuple[PartitionView, ...] = ()
    update_status: str | None = None
    update_progress: float | None = None
    new_version: str | None = None
    new_size: int | None = None
    last_checked: float | None = None
    reboot_strategy: str | None = None
    reboot_window: str | None = None
    lock_group: str | None = None
    holds_lock: bool | None = None
    boot_id: str | None = None
    booted_at: float | None = None
    reported_at: float | None = None
    last_command: CommandView | None = None
    other_version: str | None = None  # version on the partition that is not active
    machine_id: str | None = None  # as the document says (the model keys rows by the etcd key)
    # fields of the wire table (coreroll.wire.status) with no attribute here, by path
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InstanceView:
    """The server's view of a machine (an instance from the API). Immutable by convention."""

    ip: str | None = None
    version: str | None = None
    track: str | None = None
    group: str | None = None
    status: str | None = None
    status_reason: str | None = None
    last_check: float | None = None
    update_in_progress: bool | None = None
    stale: bool | None = None


def status_label(error: str | None, update_status: str | None, server_status: str | None) -> str:
    """NodeRow.status_label from the facts it follows from."""
    if error:
        return STATE_UNREADABLE
    if update_status:
        return UPDATE_STATUS_SHORT.get(update_status, update_status.lower())
    return server_status or "-"


_NO_REPORT = NodeReport()
_NO_INSTANCE = InstanceView()


@dataclass(slots=True)
class NodeRow:
    """One machine: its etcd status report, alive key and lock state merged with the server's instance.

    Treat it as immutable: the model replaces a row when anything in it changes (`rev` is the
    FleetModel.version of that change). The columns are properties over `report` (the node's own
    word) and `instance` (the server's); the merged ones (`channel`, `version`, `last_check`)
    prefer the node's report and fall back to the server, so a node known only to the server still
    shows them. Anything unknown is None.
    """

    machine_id: str
    report: NodeReport | None = None
    instance: InstanceView | None = None
    online: bool | None = None  # alive key present; None if etcd never told us (server-only)
    holds_lock: bool | None = None  # from the lock state in etcd; else the node's own word
    lock_groups_held: tuple[str, ...] = ()  # LockGroupView.ident of every group it holds
    state: str = STATE_UNKNOWN  # one of STATES
    status_since: float | None = None  # when `state`/statuses last changed (as first seen by us)
    error: str | None = None  # the node's status could not be read: names the key and what is wrong
    in_etcd: bool = False
    pending_commands: tuple[CommandView, ...] = ()
    rev: int = 0
    # lowercase machine id, hostname, channel, version, status label, server status, server group,
    # ip and lock group, joined by \x1f: what a free-text filter searches (built with the row)
    search_text: str = ""

    # --- the node's report (None when unknown) ---
    @property
    def hostname(self) -> str | None:
        return (self.report or _NO_REPORT).hostname

    @property
    def channel(self) -> str | None:
        return (self.report or _NO_REPORT).channel or (self.instance or _NO_INSTANCE).track

    @property
    def version(self) -> str | None:
        return (self.report or _NO_REPORT).version or (self.instance or _NO_INSTANCE).version

    @property
    def active_partition(self) -> str | None:
        """ "USR-A" | "USR-B" """
        return (self.report or _NO_REPORT).active_partition

    @property
    def other_version(self) -> str | None:
        return (self.report or _NO_REPORT).other_version

    @property
    def partitions(self) -> tuple[PartitionView, ...]:
        return (self.report or _NO_REPORT).partitions

    @property
    def update_status(self) -> str | None:
        """UPDATE_STATUS_* as reported."""
        return (self.report or _NO_REPORT).update_status

    @property
    def update_progress(self) -> float | None:
        """0.0 .. 1.0"""
        return (self.report or _NO_REPORT).update_progress

    @property
    def new_version(self) -> str | None:
        return (self.report or _NO_REPORT).new_version

    @property
    def new_size(self) -> int | None:
        return (self.report or _NO_REPORT).new_size

    @property
    def reboot_strategy(self) -> str | None:
        return (self.report or _NO_REPORT).reboot_strategy

    @property
    def reboot_window(self) -> str | None:
        """e.g. "Thu 23:00 1h30m" """
        return (self.report or _NO_REPORT).reboot_window

    @property
    def lock_group(self) -> str | None:
        """The locksmith group this node locks in ("" = the default group)."""
        return (self.report or _NO_REPORT).lock_group

    @property
    def boot_id(self) -> str | None:
        return (self.report or _NO_REPORT).boot_id

    @property
    def booted_at(self) -> float | None:
        return (self.report or _NO_REPORT).booted_at

    @property
    def reported_at(self) -> float | None:
        return (self.report or _NO_REPORT).reported_at

    @property
    def last_command(self) -> CommandView | None:
        """The last command the agent ran, with its `result`."""
        return (self.report or _NO_REPORT).last_command

    @property
    def last_check(self) -> float | None:
        mine = (self.report or _NO_REPORT).last_checked
        theirs = (self.instance or _NO_INSTANCE).last_check
        if mine is None or theirs is None:
            return mine if theirs is None else theirs
        return max(mine, theirs)

    def field(self, path: str) -> Any:
        """The node's report's value of wire status field `path` ("update.progress"), as read;
        None when unknown. KeyError for a path the wire table does not have."""
        spec = wire.field(path)
        report = self.report or _NO_REPORT
        return report.extra.get(path) if spec.attr is None else getattr(report, spec.attr)

    # --- the server's view (None when the server does not know the node) ---
    @property
    def in_server(self) -> bool:
        return self.instance is not None

    @property
    def group(self) -> str | None:
        """Server group id."""
        return (self.instance or _NO_INSTANCE).group

    @property
    def server_status(self) -> str | None:
        """Instance status name, e.g. "OnHold"."""
        return (self.instance or _NO_INSTANCE).status

    @property
    def server_status_reason(self) -> str | None:
        return (self.instance or _NO_INSTANCE).status_reason

    @property
    def server_version(self) -> str | None:
        return (self.instance or _NO_INSTANCE).version

    @property
    def ip(self) -> str | None:
        return (self.instance or _NO_INSTANCE).ip

    @property
    def update_in_progress(self) -> bool | None:
        return (self.instance or _NO_INSTANCE).update_in_progress

    @property
    def status_label(self) -> str:
        """Short status word for the table: `downloading`, `idle`, `OnHold`, `unreadable`, or `-`."""
        return status_label(self.error, self.update_status, self.server_status)

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
    stale_reason: str | None = None  # "offline for 6m", "unknown to the fleet", "held for 2h 3m"
    rebooting: bool = False  # offline for less than the model's stale_offline_grace: not (yet) stale
    offline_since: float | None = None  # when it went offline (or, seen offline at first, its last report)
    hostname: str | None = None  # as the node reports it (from etcd: shown through textsafe.visible)

    @property
    def display_name(self) -> str:
        return self.hostname or self.machine_id


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
        """Its name across kinds: the group name for locksmith, `airlock/<group>` for airlock (a
        group in both the v2 and the v3 keyspace has one ident for two semaphores: see `ref`)."""
        return f"airlock/{self.group}" if self.kind == "airlock" else self.group

    @property
    def ref(self) -> tuple[str, str]:
        """(kind, group): unique across kinds and APIs."""
        return (self.kind, self.group)

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


@dataclass(frozen=True)
class HeaderInfo:
    """What the dashboard's header line shows (built by `tui.presenter.Presenter.header`)."""

    cluster: str
    etcd: ConnectionState | None
    server: ConnectionState | None
    counts: Mapping[str, int] = field(default_factory=dict)
    total: int = 0
    shown: int = 0
    last_update: float | None = None
    read_only: bool = False
    frozen: bool = False
    loading: int = 0  # updates still being read in (first listing of a big fleet)
    now: float | None = None
    session: str = ""  # who is watching, e.g. "browser: read-only" (empty in a terminal)
    lock_apis_watched: frozenset[str] = frozenset()  # locksmith APIs the etcd source watches
    lock_apis_holding: frozenset[str] = frozenset()  # those with at least one semaphore
