"""The demo's lock invariants, from etcd's own history of the semaphore keys.

Reads every revision of every lock key with `coreroll.fleet.history.read_lock_history` (a watch
from revision 1: etcd keeps each value until compaction, and the demo never compacts) and checks:
- no group ever had more holders than its max (`check_capacity`, against the max in each value and
  the max the demo configured);
- every reboot under etcd-lock happened while the node held its group's lock (`check_reboots`);
and reports the most holders each group had at once.

Public API: `LockReport(max_seen, configured, capacity_problems, reboot_problems, events)` with
`.ok`, `.line()`; `max_holders(events) -> {group: n}`; `async lock_report(client, configured,
reboots=(), start_revision=1) -> LockReport`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from coreroll.etcd.port import EtcdKV
from coreroll.fleet.history import LockEvent, RebootLike, check_capacity, check_reboots, read_lock_history
from coreroll.locks import group_label


def max_holders(events: Iterable[LockEvent]) -> dict[str, int]:
    """The most holders each group had in any one revision."""
    most: dict[str, int] = {}
    for event in events:
        held = len(event.semaphore.holders) if event.semaphore is not None else 0
        most[event.group] = max(most.get(event.group, 0), held)
    return most


@dataclass
class LockReport:
    max_seen: dict[str, int]
    configured: dict[str, int]
    capacity_problems: list[str] = field(default_factory=list)
    reboot_problems: list[str] = field(default_factory=list)
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.capacity_problems and not self.reboot_problems

    def line(self) -> str:
        """`default 2/2, lb 1/1, db 1/1` (most holders seen / max)."""
        groups = sorted(set(self.configured) | set(self.max_seen), key=lambda g: (g != "", g))
        parts = []
        for group in groups:
            limit = self.configured.get(group)
            parts.append(
                f"{group_label(group)} {self.max_seen.get(group, 0)}/{'-' if limit is None else limit}"
            )
        return ", ".join(parts) or "-"


async def lock_report(
    client: EtcdKV,
    configured: dict[str, int],
    reboots: Iterable[RebootLike] = (),
    start_revision: int = 1,
) -> LockReport:
    events = await read_lock_history(client, start_revision=start_revision)
    return LockReport(
        max_seen=max_holders(events),
        configured=dict(configured),
        capacity_problems=check_capacity(events, configured),
        reboot_problems=check_reboots(reboots, events),
        events=len(events),
    )
