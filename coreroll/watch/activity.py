"""The event log behind the dashboard's log panel: server activity, audit records of
interventions, connection changes and notes, in arrival order, each once (ids deduplicate the
replays a resync brings)."""

from __future__ import annotations

from collections import deque

from coreroll.watch import updates as u
from coreroll.watch.parse import ValueFormatError, load_object, opt_str, opt_time
from coreroll.watch.views import ActivityEntry


class ActivityLog:
    """At most `maxlen` entries; `seq` numbers them in arrival order, `version` counts changes."""

    def __init__(self, maxlen: int = 2000) -> None:
        self._items: deque[tuple[int, ActivityEntry]] = deque(maxlen=maxlen)
        self._ids: set[str] = set()
        self.seq = 0
        self.version = 0

    def add(self, entry: ActivityEntry) -> bool:
        """False (and nothing added) when an entry with this id is already kept."""
        if entry.id in self._ids:
            return False
        if len(self._items) == self._items.maxlen:
            self._ids.discard(self._items[0][1].id)
        self.seq += 1
        self._items.append((self.seq, entry))
        self._ids.add(entry.id)
        self.version += 1
        return True

    def after(self, seq: int = 0) -> list[tuple[int, ActivityEntry]]:
        """Entries that arrived after `seq` (0 = all kept), oldest first."""
        if seq <= 0:
            return list(self._items)
        return [item for item in self._items if item[0] > seq]

    @property
    def entries(self) -> list[ActivityEntry]:
        return [entry for _, entry in self._items]


def audit_entry(update: u.AuditRecord, now: float) -> ActivityEntry:
    """`coreroll/v1/audit/<id>` = {at, by, action, target, result} as a log line."""
    try:
        data = load_object(update.raw, update.key)
    except ValueFormatError as exc:
        return ActivityEntry(f"audit:{update.id}", now, "Audit", str(exc), "warning", "audit")
    action, target, result = (opt_str(data, k) or "-" for k in ("action", "target", "result"))
    return ActivityEntry(
        id=f"audit:{update.id}",
        at=opt_time(data, "at") or now,
        kind="Intervention",
        message=f"{action} {target}: {result}",
        severity="info" if result.startswith("ok") else "warning",
        source="audit",
        by=opt_str(data, "by"),
    )


def server_entry(data: dict[str, object], now: float) -> ActivityEntry:
    """A server activity object (docs/api.md) as a log line."""
    kind = opt_str(data, "kind") or "Activity"
    return ActivityEntry(
        id=f"server:{data.get('id')}",
        at=opt_time(data, "at") or now,
        kind=kind,
        message=opt_str(data, "message") or kind,
        severity=opt_str(data, "severity") or "info",
        source="server",
        group=opt_str(data, "group"),
        channel=opt_str(data, "channel"),
        version=opt_str(data, "version"),
        instance=opt_str(data, "instance"),
    )
