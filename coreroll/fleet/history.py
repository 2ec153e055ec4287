"""The reboot-lock history as etcd recorded it, and the two safety checks on it.

etcd keeps every revision of every key until compaction, so a watch from revision 1 on the lock
prefix replays each semaphore value ever written, in order. From that:
- `check_capacity(events, configured_max)`: no group ever had more holders than its max (the max
  in the value itself and, when given, the max the scenario configured);
- `check_reboots(reboots, events)`: every reboot under etcd-lock happened while the node was a
  holder: the semaphore revision it read just before rebooting lies inside one of its holding
  intervals [revision that added it, revision that removed it).

Public API: `LockEvent(revision, group, semaphore)`, `async read_lock_history(client,
start_revision=1, within=30.0) -> list[LockEvent]`, `holding_intervals(events) ->
{(group, machine): [(from_rev, to_rev | None)]}`, `check_capacity(...) -> list[str]`,
`check_reboots(...) -> list[str]` (each a description of a violation; empty = safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from coreroll.etcd.port import EtcdKV
from coreroll.locks import Semaphore, group_from_key
from coreroll.locks.keys import LOCK_PREFIX, is_semaphore_key
from coreroll.locks.store import state_from_value


@dataclass(frozen=True)
class LockEvent:
    revision: int
    group: str
    semaphore: Semaphore | None  # None: deleted or unreadable


class RebootLike(Protocol):
    # read-only: RebootRecord is a frozen dataclass
    @property
    def machine_id(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def key_revision(self) -> int | None: ...


async def read_lock_history(client: EtcdKV, start_revision: int = 1, within: float = 30.0) -> list[LockEvent]:
    """Every write to a semaphore key from `start_revision` up to now, oldest first."""
    listing = await client.get_prefix(LOCK_PREFIX)
    last = max((kv.mod_revision for kv in listing.kvs if is_semaphore_key(kv.key)), default=0)
    events: list[LockEvent] = []
    if last < start_revision:
        return events
    watch = await client.watch_prefix(LOCK_PREFIX, start_revision)
    try:
        async with asyncio.timeout(within):
            async for event in watch:
                key = event.key
                revision = event.mod_revision
                if is_semaphore_key(key):
                    state = state_from_value(key, event.value, revision)
                    events.append(LockEvent(revision, group_from_key(key), state.semaphore))
                if revision >= last:
                    break
    finally:
        await watch.cancel()
    return events


def check_capacity(events: Iterable[LockEvent], configured_max: dict[str, int] | None = None) -> list[str]:
    problems = []
    for event in events:
        sem = event.semaphore
        if sem is None:
            continue
        limit = sem.max
        if configured_max and event.group in configured_max:
            limit = min(limit, configured_max[event.group])
        if len(sem.holders) > limit:
            problems.append(
                f"revision {event.revision}: group {event.group or '(default)'} had "
                f"{len(sem.holders)} holders {sem.holders} over its max {limit}"
            )
    return problems


def holding_intervals(events: Iterable[LockEvent]) -> dict[tuple[str, str], list[tuple[int, int | None]]]:
    intervals: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    current: dict[str, set[str]] = {}
    for event in events:
        now = set(event.semaphore.holders) if event.semaphore is not None else set()
        before = current.get(event.group, set())
        for machine in now - before:
            intervals.setdefault((event.group, machine), []).append((event.revision, None))
        for machine in before - now:
            spans = intervals[(event.group, machine)]
            start, _ = spans[-1]
            spans[-1] = (start, event.revision)
        current[event.group] = now
    return intervals


def check_reboots(reboots: Iterable[RebootLike], events: Iterable[LockEvent]) -> list[str]:
    intervals = holding_intervals(events)
    problems = []
    for reboot in reboots:
        if reboot.strategy != "etcd-lock":
            continue
        revision = reboot.key_revision
        spans = intervals.get((reboot.group, reboot.machine_id), [])
        inside = revision is not None and any(
            start <= revision and (end is None or revision < end) for start, end in spans
        )
        if not inside:
            problems.append(
                f"{reboot.machine_id} rebooted at semaphore revision {revision} in group "
                f"{reboot.group or '(default)'} without holding the lock (held during {spans})"
            )
    return problems
