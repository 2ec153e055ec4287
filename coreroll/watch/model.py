"""The dashboard's fleet model: pure, no I/O, no Textual. One instance per dashboard.

For the TUI engineer
--------------------
Data flows one way: sources (`EtcdSource`, `FeedSource`) emit `coreroll.watch.updates.*` messages
into a sink (`UpdateBuffer.put` is the usual one); once per tick the UI drains the buffer and calls
`model.apply_many(batch)`, then repaints what changed. Nothing else mutates the model, except
`model.note(...)` for action outcomes.

    model = FleetModel()                      # clock=time.time; thresholds are keyword args
    changed: set[str] = model.apply_many(buffer.drain())   # machine ids whose NodeRow changed
    model.version                             # bumps on every change; row.rev = version at change
    model.locks_version, model.channels_version, model.activity_version, model.connections_version
                                              # per-section counters: repaint a panel only if moved

Records (dataclasses from `coreroll.watch.views`, re-exported here; unknown = None -> `-`; all are
immutable by convention: the model replaces a record when something in it changes):
- `model.rows: dict[str, NodeRow]` (read it, never mutate) / `model.get(machine_id)`.
  NodeRow: machine_id, hostname, channel, version, active_partition, other_version, partitions,
  update_status (+ `.status_label` short word), update_progress (0..1), new_version, new_size,
  reboot_strategy, reboot_window, lock_group, holds_lock, lock_groups_held, last_check, online,
  boot_id, booted_at, reported_at, last_command, server_status(+_reason), server_version, group, ip,
  state (one of views.STATES), status_since, error (unreadable: names the key), pending_commands,
  in_etcd / in_server, rev; `.display_name` = hostname or machine id. Most are properties over
  `row.report` (the node's etcd report) and `row.instance` (the server's view).
- `model.filter_rows(query="", sort="machine", reverse=False) -> list[NodeRow]`: the table's rows.
  Query language in `coreroll.watch.query` (free text and `channel:beta status:error lock:held
  online:no`, `!` negates); raises `QueryError` with a message to show. Sort columns: `SORT_KEYS`.
- `model.lock_groups() -> list[LockGroupView]` (holders with `since`, `stale`, `stale_reason`,
  `rebooting`, `offline_since`), `model.lock_group(ident, kind=None)`, `model.stale_holders()`.
  `model.lock_apis_watched` (the locksmith APIs the etcd source lists: v2, v3 or both, from its
  snapshot) and `model.locks.apis_holding` (those with a semaphore) feed the header; the first
  time both hold semaphores, the event log says so (Flatcar's locksmithd reads only v2).
  A holder is stale when it is unknown to the fleet, has held the lock longer than
  `lock_stale_after`, or has been offline longer than `stale_offline_grace` (default 300 s on the
  model's clock: a normal reboot takes the alive key away for a minute or two, so a holder offline
  for less is shown `rebooting`, not stale). Offline since: when the alive key went away while we
  watched; for a node already offline when first seen, its last `reported_at` (capped at now).
- `model.channels() -> list[ChannelView]`, `model.groups() -> list[ServerGroupView]`, `model.group(id)`:
  each with `.progress: RolloutProgress(total, done, updating, failed, on_hold, fraction)`.
- `model.activity_after(seq) -> list[tuple[int, ActivityEntry]]`: event-log lines in arrival order
  (feed activity, audit records of interventions, connection changes, notes). `model.activity_seq`.
- `model.connections["etcd" | "server"] -> ConnectionState(status, detail, last_ok, since)`;
  `model.is_stale(source)` is True while that source is not connected (show its data as stale).
- `model.counts() -> dict[state, int]`, `model.stuck_nodes() -> list[StuckNode]`,
  `model.last_change_at` (time of the last applied change, for the header).
- Cost at 100k nodes (2 busy cores): a full snapshot ~2.5 s CPU, a change ~30-50 us, filter_rows
  0.06 s by machine id and ~0.3 s by another column. counts() and the rollout progress of
  channels()/groups() are tallied row by row as rows change: O(states) and O(channels x versions),
  not a pass over the rows. Call filter_rows only when `version` (or the query/sort) moved. A
  compiled `Query` over 10k rows: ~4 ms for free text (one `in` on `NodeRow.search_text`),
  ~5-15 ms for field terms (memoized per distinct value).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from coreroll.watch import updates as u
from coreroll.watch.activity import ActivityLog, audit_entry, server_entry
from coreroll.watch.connections import next_state
from coreroll.watch.lockbook import LockBook
from coreroll.watch.merge import ACTIVE_STATES, build_row
from coreroll.watch.parse import (
    NodeReport,
    ValueFormatError,
    instance_id,
    opt_str,
    opt_time,
    parse_command,
    parse_instance,
    parse_node_status,
)
from coreroll.watch.query import SORT_KEYS, Query, QueryError, parse_query, sort_rows
from coreroll.watch.rollout import RolloutIndex, channel_view, group_view
from coreroll.watch.views import (
    CONNECTED,
    STATES,
    ActivityEntry,
    ChannelView,
    CommandView,
    ConnectionState,
    HolderView,
    InstanceView,
    LockGroupView,
    NodeRow,
    RolloutProgress,
    ServerGroupView,
    StuckNode,
)

__all__ = [
    "SORT_KEYS",
    "ActivityEntry",
    "ChannelView",
    "CommandView",
    "ConnectionState",
    "FleetModel",
    "HolderView",
    "LockGroupView",
    "NodeRow",
    "QueryError",
    "RolloutProgress",
    "ServerGroupView",
    "StuckNode",
]

ETCD = "etcd"
SERVER = "server"


class FleetModel:
    """Nodes keyed by machine id, lock groups, channels, server groups, the event log and the
    connection state of each source. See the module docstring for the API."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        lock_stale_after: float = 3600.0,
        stale_offline_grace: float = 300.0,
        stuck_after: float = 1800.0,
        max_activity: int = 2000,
    ) -> None:
        self.clock = clock
        self.lock_stale_after = lock_stale_after
        self.stale_offline_grace = stale_offline_grace
        self.stuck_after = stuck_after
        self.version = 0
        self.locks_version = 0
        self.channels_version = 0
        self.connections_version = 0
        self.last_change_at: float | None = None
        self.rows: dict[str, NodeRow] = {}
        self.connections: dict[str, ConnectionState] = {
            ETCD: ConnectionState(ETCD),
            SERVER: ConnectionState(SERVER),
        }
        self.log = ActivityLog(max_activity)
        # etcd-derived
        self._reports: dict[str, NodeReport] = {}
        self._errors: dict[str, str] = {}
        self._raw: dict[str, bytes] = {}  # last status value per node: a repeat needs no parsing
        self._alive: set[str] = set()
        # machine id -> (since when it is offline, whether we saw the alive key go): rows with online False
        self._offline_since: dict[str, tuple[float, bool]] = {}
        self._commands: dict[str, dict[str, CommandView]] = {}
        self.locks = LockBook()
        self.lock_apis_watched: frozenset[str] = frozenset()
        # server-derived
        self._instances: dict[str, InstanceView] = {}
        self._channels: dict[str, dict[str, object]] = {}
        self._groups: dict[str, dict[str, object]] = {}
        self._cache: dict[str, tuple[int, list[Any]]] = {}
        # kept up to date row by row in _touch, so the header and channel bar need no full pass
        self._state_counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self._rollout = RolloutIndex()

    # --- applying updates ------------------------------------------------------------------------

    def apply_many(self, batch: Iterable[u.Update]) -> set[str]:
        """Apply a batch (one UI tick's worth); returns the machine ids whose row changed."""
        items = batch if isinstance(batch, list) else list(batch)
        changed: set[str] = set()
        with _gc_paused(len(items) >= BIG_BATCH):
            for update in items:
                changed |= self.apply(update)
        return changed

    def apply(self, update: u.Update) -> set[str]:
        """Apply one source message; returns the machine ids whose row changed (or vanished)."""
        handler = self._handlers.get(type(update))
        if handler is None:
            raise TypeError(f"not a watch update: {update!r}")
        if type(update) not in _WHOLE_LISTINGS:  # (no context manager: this runs 1,000s of times a second)
            return handler(self, update)
        with _gc_paused(True):
            return handler(self, update)

    def _touch(self, ids: Iterable[str]) -> set[str]:
        """Rebuild the rows of `ids`; returns those that really changed."""
        now = self.clock()
        rev = self.version + 1
        changed: set[str] = set()
        rows = self.rows
        counts = self._state_counts
        locks_known = self.locks.known
        for mid in ids:
            old = rows.get(mid)
            new = build_row(
                mid,
                old,
                now,
                report=self._reports.get(mid),
                error=self._errors.get(mid),
                alive=mid in self._alive,
                instance=self._instances.get(mid),
                commands=self._commands.get(mid),
                held=self.locks.held_idents(mid),
                locks_known=locks_known,
            )
            if new is None or new.online is not False:
                self._offline_since.pop(mid, None)
            elif mid not in self._offline_since:
                # offline when first seen: it went quiet after its last report, or later
                reported = new.reported_at
                self._offline_since[mid] = (now if reported is None else min(now, reported), False)
            if new == old:
                continue
            changed.add(mid)
            self._rollout.update(mid, new)
            if old is not None:
                counts[old.state] -= 1
            if new is None:
                del rows[mid]
            else:
                counts[new.state] = counts.get(new.state, 0) + 1
                new.rev = rev  # `new` is not shared with anyone yet
                rows[mid] = new
        if changed:
            self._bump()
        return changed

    def _bump(self) -> None:
        self.version += 1
        self.last_change_at = self.clock()

    def _node_status(self, update: u.NodeStatus) -> set[str]:
        self._set_status(update)
        return self._touch([update.machine_id])

    def _set_status(self, update: u.NodeStatus) -> None:
        mid = update.machine_id
        if update.raw is None:
            self._reports.pop(mid, None)
            self._errors.pop(mid, None)
            self._raw.pop(mid, None)
            return
        if self._raw.get(mid) == update.raw:
            return
        self._raw[mid] = update.raw
        try:
            report, problem = parse_node_status(update.raw, update.key)
        except ValueFormatError as exc:
            # keep the last good report (if any) on screen, marked unreadable
            self._errors[mid] = str(exc)
            return
        self._reports[mid] = report
        if problem:
            self._errors[mid] = problem
        else:
            self._errors.pop(mid, None)

    def _node_alive(self, update: u.NodeAlive) -> set[str]:
        if update.alive:
            self._alive.add(update.machine_id)
        elif update.machine_id in self._alive:
            self._alive.discard(update.machine_id)
            self._offline_since[update.machine_id] = (self.clock(), True)
        if update.machine_id in self.locks.held_by:
            self.locks_version += 1  # a holder going offline makes it stale in the lock panel
        return self._touch([update.machine_id])

    def _node_batch(self, batch: u.NodeBatch) -> set[str]:
        for status in batch.statuses:
            self._set_status(status)
        self._alive |= batch.alive
        ids = {status.machine_id for status in batch.statuses} | batch.alive
        for data in batch.instances:
            mid = instance_id(data)
            if mid is not None:
                self._instances[mid] = parse_instance(data)
                ids.add(mid)
        return self._touch(ids)

    def _node_command(self, update: u.NodeCommand) -> set[str]:
        self._set_command(update)
        return self._touch([update.machine_id])

    def _set_command(self, update: u.NodeCommand) -> None:
        pending = self._commands.setdefault(update.machine_id, {})
        if update.raw is None:
            pending.pop(update.command_id, None)
        else:
            pending[update.command_id] = parse_command(update.raw, update.key, update.command_id)
        if not pending:
            del self._commands[update.machine_id]

    def _lock_state(self, update: u.LockState) -> set[str]:
        return self._locks_moved(lambda now: self.locks.apply(update, now))

    def _lock_snapshot(self, update: u.LockSnapshot) -> set[str]:
        return self._locks_moved(lambda now: self.locks.replace(update.locks, frozenset({update.kind}), now))

    def _locks_moved(self, change: Callable[[float], tuple[bool, set[str]]]) -> set[str]:
        known = self.locks.known
        apis_before = self.locks.apis_holding
        moved, touched = change(self.clock())
        if moved:
            self.locks_version += 1
            self._bump()
            apis = self.locks.apis_holding
            if len(apis) == 2 and apis != apis_before:
                self.note(
                    "reboot-lock semaphores exist in both etcd APIs (v2 and v3, marked in the lock "
                    "panel); Flatcar's locksmithd reads only v2",
                    "warning",
                    kind="Locks",
                )
        if known != self.locks.known:
            touched |= set(self.rows)  # the holds_lock column changes its source for every row
        return self._touch(touched)

    def _audit(self, update: u.AuditRecord) -> set[str]:
        self._add_activity(audit_entry(update, self.clock()))
        return set()

    def _etcd_snapshot(self, snap: u.EtcdSnapshot) -> set[str]:
        before = set(self._reports) | set(self._errors) | self._alive | set(self._commands)
        present = {status.machine_id for status in snap.statuses}
        for mid in set(self._raw) - present:
            self._set_status(u.NodeStatus(mid, "", None))
        self._commands.clear()
        now = self.clock()
        for mid in self._alive - snap.alive:  # went away while we were not watching: by now
            self._offline_since[mid] = (now, False)
        self._alive = set(snap.alive)
        for status in snap.statuses:
            self._set_status(status)
        for command in snap.commands:
            self._set_command(command)
        for record in sorted(snap.audit, key=lambda r: r.id):
            self._audit(record)
        after = set(self._reports) | set(self._errors) | self._alive | set(self._commands)
        watched = snap.lock_kinds & {"v2", "v3"}
        if watched != self.lock_apis_watched:
            self.lock_apis_watched = watched
            self.locks_version += 1  # the header and the panel's v2/v3 marks follow it
            self._bump()
        changed = self._locks_moved(lambda now: self.locks.replace(snap.locks, snap.lock_kinds, now))
        return changed | self._touch(before | after)

    def _feed_snapshot(self, snap: u.FeedSnapshot) -> set[str]:
        before = set(self._instances)
        self._instances = {
            mid: parse_instance(i) for i in snap.instances if (mid := instance_id(i)) is not None
        }
        self._channels = {str(c["name"]): c for c in snap.channels if c.get("name")}
        self._groups = {str(g["id"]): g for g in snap.groups if g.get("id") is not None}
        self.channels_version += 1
        self._bump()
        for item in sorted(snap.activity, key=lambda a: (opt_time(a, "at") or 0.0, str(a.get("id")))):
            self._server_activity(item)
        return self._touch(before | set(self._instances))

    def _feed_event(self, event: u.FeedEvent) -> set[str]:
        data = event.data
        if event.kind == "instance":
            mid = opt_str(data, "machine_id")
            if mid is None:
                return set()
            if data.get("deleted"):
                self._instances.pop(mid, None)
            else:
                self._instances[mid] = parse_instance(data)
            return self._touch([mid])
        if event.kind in ("channel", "group"):
            ident = opt_str(data, "name" if event.kind == "channel" else "id")
            if ident is not None:
                table = self._channels if event.kind == "channel" else self._groups
                if data.get("deleted"):
                    table.pop(ident, None)
                else:
                    table[ident] = data
                self.channels_version += 1
                self._bump()
            return set()
        if event.kind == "activity":
            self._server_activity(data)
        return set()

    def _server_activity(self, data: dict[str, object]) -> None:
        self._add_activity(server_entry(data, self.clock()))

    def _connection(self, update: u.Connection) -> set[str]:
        now = update.at if update.at is not None else self.clock()
        old = self.connections.get(update.source, ConnectionState(update.source))
        new, news = next_state(old, update, now)
        if new != old:
            self.connections[update.source] = new
            self.connections_version += 1
            self._bump()
        if news is not None:
            self.note(news[0], news[1], kind="Connection", at=now)
        return set()

    def _note(self, update: u.Note) -> set[str]:
        self.note(update.message, update.severity, kind=update.kind)
        return set()

    _handlers: ClassVar[dict[type, Callable[[FleetModel, Any], set[str]]]] = {
        u.NodeStatus: _node_status,
        u.NodeAlive: _node_alive,
        u.NodeBatch: _node_batch,
        u.NodeCommand: _node_command,
        u.LockState: _lock_state,
        u.LockSnapshot: _lock_snapshot,
        u.AuditRecord: _audit,
        u.EtcdSnapshot: _etcd_snapshot,
        u.FeedSnapshot: _feed_snapshot,
        u.FeedEvent: _feed_event,
        u.Connection: _connection,
        u.Note: _note,
    }

    # --- event log -------------------------------------------------------------------------------

    def note(
        self, message: str, severity: str = "info", *, kind: str = "Note", at: float | None = None
    ) -> None:
        """Add a line from this process to the event log (e.g. an action's outcome)."""
        at = self.clock() if at is None else at
        self._add_activity(
            ActivityEntry(f"local:{self.log.seq + 1}", at, kind, message, severity, "dashboard")
        )

    def _add_activity(self, entry: ActivityEntry) -> None:
        if self.log.add(entry):
            self._bump()

    def activity_after(self, seq: int = 0) -> list[tuple[int, ActivityEntry]]:
        """Event-log entries that arrived after `seq` (0 = all kept), oldest first."""
        return self.log.after(seq)

    @property
    def activity(self) -> list[ActivityEntry]:
        return self.log.entries

    @property
    def activity_seq(self) -> int:
        return self.log.seq

    @property
    def activity_version(self) -> int:
        return self.log.version

    # --- reading ---------------------------------------------------------------------------------

    def get(self, machine_id: str) -> NodeRow | None:
        return self.rows.get(machine_id)

    def is_stale(self, source: str) -> bool:
        state = self.connections.get(source)
        return state is None or state.status != CONNECTED

    def filter_rows(
        self, query: str | Query = "", sort: str | None = "machine", reverse: bool = False
    ) -> list[NodeRow]:
        """The table's rows: filtered by `query` (raises QueryError), sorted by a SORT_KEYS column."""
        if isinstance(query, str):
            query = parse_query(query, self.stale_holder_ids()) if query.strip() else Query("", ())
        # sorting 100k rows allocates 200k tuples: each full GC pass would rescan every row
        with _gc_paused(len(self.rows) >= BIG_BATCH):
            rows: Iterable[NodeRow] = self.rows.values()
            if query.predicates:
                rows = query.select(rows)
            if sort is None:
                return list(rows)
            return sort_rows(rows, sort, reverse)

    def counts(self) -> dict[str, int]:
        """Nodes per state (every state in views.STATES present, zeros included)."""
        return dict(self._state_counts)

    def lock_groups(self) -> list[LockGroupView]:
        return self.locks.views(
            self.rows.get,
            self.clock(),
            self.lock_stale_after,
            offline_since=self._offline_since.get,
            offline_grace=self.stale_offline_grace,
        )

    def lock_group(self, ident: str, kind: str | None = None) -> LockGroupView | None:
        """The group named `ident` (of `kind` when given: a name may exist in v2 and v3 at once)."""
        return next(
            (view for view in self.lock_groups() if view.ident == ident and kind in (None, view.kind)),
            None,
        )

    def stale_holders(self) -> list[tuple[LockGroupView, HolderView]]:
        return [(view, h) for view in self.lock_groups() for h in view.holders if h.stale]

    def stale_holder_ids(self) -> frozenset[str]:
        return frozenset(h.machine_id for _, h in self.stale_holders())

    def stuck_nodes(self) -> list[StuckNode]:
        """Online nodes in an active state (checking .. need-reboot) for longer than `stuck_after`."""
        now = self.clock()
        stuck = [
            StuckNode(row.machine_id, row.status_label, row.status_since, now - row.status_since)
            for row in self.rows.values()
            if row.status_since is not None
            and row.online is not False
            and (row.state in ACTIVE_STATES or row.status_label == "checking")
            and now - row.status_since > self.stuck_after
        ]
        return sorted(stuck, key=lambda s: -s.seconds)

    def _cached(self, name: str, build: Callable[[], list[Any]]) -> list[Any]:
        """`build()` once per model version (the panels ask every tick; 100k rows take a while)."""
        cached = self._cache.get(name)
        if cached is None or cached[0] != self.version:
            cached = (self.version, build())
            self._cache[name] = cached
        return list(cached[1])

    def channels(self) -> list[ChannelView]:
        """In the server's order (alpha, beta, stable, then added channels)."""
        return self._cached(
            "channels", lambda: [channel_view(n, d, self._rollout) for n, d in self._channels.items()]
        )

    def channel_version(self, name: str | None) -> str | None:
        data = self._channels.get(name or "")
        return opt_str(data, "version") if data else None

    def known_channel(self, name: str) -> bool:
        return name in self._channels

    def groups(self) -> list[ServerGroupView]:
        """In the server's order."""
        return self._cached(
            "groups", lambda: [g for gid in self._groups if (g := self.group(gid)) is not None]
        )

    def group(self, group_id: str) -> ServerGroupView | None:
        data = self._groups.get(group_id)
        return None if data is None else group_view(group_id, data, self._rollout, self.channel_version)


BIG_BATCH = 500
_WHOLE_LISTINGS = (u.EtcdSnapshot, u.FeedSnapshot)


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Hold the cyclic GC off while a large batch builds rows: the rows hold no cycles, and with
    100k live rows each full collection rescans them all (measured: 100k-node snapshot 4.3 s with,
    2.9 s without). Restored afterwards; a no-op when the GC is already off."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
