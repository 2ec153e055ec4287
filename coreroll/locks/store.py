"""The lock store: locksmith's semaphore kept in etcd, changed only by compare-and-swap.

`LockStore` is the backend protocol: `KVLockStore` (coreroll/locks/kvstore.py, over the
`coreroll.etcd.port.EtcdKV` port) implements it, as `V3LockStore` and `V2LockStore`; `coreroll.locks.open_lock_store(config)` picks one by
`config.api` (the factory lives in coreroll/locks/auto.py, with `--etcd-api auto`'s choice, so this
module never imports its backends).
Every method is async:

- `get(group="") -> (Semaphore, revision)`: creates the semaphore first when absent (as locksmith's
  client does on start-up: create-if-absent, so an existing value is never replaced).
  `revision` is the key's v3 mod_revision or v2 modifiedIndex.
- `lock(group, holder) -> revision`, `unlock(group, holder) -> revision`,
  `set_max(group, n) -> (old, new)`: apply the rule to the value and write it with CAS. Callers of
  one store take turns per key in arrival order (they never race each other); each change starts
  from the last value the store saw (read only when it has none). A lost race to another client is
  retried at once against the value v3's failed compare returns, then with bounded full-jitter
  backoff and a fresh read (`LockConflictError` after `conflict_deadline` seconds). Rule errors
  (`SemaphoreFullError`, `HolderExistsError`, `HolderNotFoundError`) are raised without retrying,
  but only when a value just read from etcd refuses the change.
- `groups() -> {group: Semaphore}` every valid semaphore under the prefix (never creates one);
  `group_states() -> {group: GroupState}` also reports unparsable ones with `error` set.
- `watch() -> AsyncIterator[GroupState]`: first the current state of every group, then each new
  state as it is written, with its revision; a deleted key gives `semaphore=None, error=None`.
- `close()`.

A value that is not semaphore JSON raises `SemaphoreFormatError` naming the key; it is never written.
"""

from __future__ import annotations

import abc
import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from coreroll.etcd.config import EtcdConfig
from coreroll.locks.keys import group_from_key, semaphore_key
from coreroll.locks.semaphore import (
    LockError,
    Semaphore,
    SemaphoreFormatError,
    new_semaphore,
    parse_semaphore,
)

T = TypeVar("T")


class LockConflictError(LockError):
    """Other writers kept winning the compare-and-swap until the deadline."""


@dataclass(frozen=True)
class GroupState:
    """One group's semaphore at `revision`; `error` says why `semaphore` could not be read."""

    group: str
    semaphore: Semaphore | None
    error: str | None
    revision: int

    @property
    def key(self) -> str:
        return semaphore_key(self.group)


def state_from_value(key: str, value: bytes | str | None, revision: int) -> GroupState:
    group = group_from_key(key)
    if value is None:
        return GroupState(group, None, None, revision)
    try:
        return GroupState(group, parse_semaphore(value, semaphore_key(group)), None, revision)
    except SemaphoreFormatError as exc:
        return GroupState(group, None, str(exc), revision)


class LockStore(abc.ABC):
    """Semaphore rules over an etcd backend; subclasses supply read, create and CAS."""

    # Backoff after a lost compare-and-swap: full jitter between 0 and base * 2**n, capped.
    backoff_base = 0.002
    backoff_cap = 0.25
    # Lost compares retried at once against the value the failure returned (v3) before backing off;
    # more would only make every client that lost retry together (a thundering herd).
    immediate_retries = 1

    def __init__(self, config: EtcdConfig, *, conflict_deadline: float = 30.0) -> None:
        self.config = config
        self.conflict_deadline = conflict_deadline
        self.conflicts = 0  # lost CAS races so far (the benchmark reports it)
        self._known: dict[str, tuple[bytes, int]] = {}  # key -> last value and revision seen
        self._turns: dict[str, asyncio.Lock] = {}  # key -> whose turn it is to change it

    # --- backend ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def _read(self, key: str) -> tuple[bytes | None, int]:
        """Raw value and revision of `key` (None, 0 when absent)."""

    @abc.abstractmethod
    async def _create(self, key: str, value: bytes) -> bool:
        """Write `value` only if `key` is absent; False when it exists."""

    @abc.abstractmethod
    async def _cas(
        self, key: str, value: bytes, revision: int
    ) -> tuple[int | None, tuple[bytes | None, int] | None]:
        """Write `value` only if `key` is still at `revision`.

        Returns (new revision, None) on success; (None, (current value, its revision)) when the
        backend learnt the current value from the failed compare, else (None, None).
        """

    @abc.abstractmethod
    async def _list(self) -> list[tuple[str, bytes, int]]:
        """(v3-style key, value, revision) of every semaphore key under the prefix."""

    @abc.abstractmethod
    def watch(self) -> AsyncIterator[GroupState]:
        """Current state of every group, then each change."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def v3_kv(self) -> Any:
        """The connected v3 `EtcdKV` when this store uses v3 (audit records go there), else None."""
        return None

    # --- the operations ----------------------------------------------------------------------
    async def get(self, group: str = "") -> tuple[Semaphore, int]:
        key = semaphore_key(group)
        raw, revision = await self._current(key)
        return parse_semaphore(raw, key), revision

    async def peek(self, group: str = "") -> tuple[Semaphore | None, int]:
        """Like get() but never creates: (None, 0) when the group has no semaphore."""
        key = semaphore_key(group)
        raw, revision = await self._read(key)
        if raw is None:
            return None, revision
        self._known[key] = (raw, revision)
        return parse_semaphore(raw, key), revision

    async def update(self, group: str, change: Callable[[Semaphore], T]) -> tuple[T, Semaphore, int]:
        """Apply `change` to the stored semaphore with CAS; returns (change's result, new state, revision).

        Callers of one store take turns per key, first come first served: they would only beat
        each other's compare-and-swap otherwise. Each turn starts from the last value this store
        saw (no read when it is current); a refusal by the rules is only believed on a fresh read.
        """
        key = semaphore_key(group)
        async with self._turn(key):
            return await self._update_in_turn(key, change)

    async def _update_in_turn(self, key: str, change: Callable[[Semaphore], T]) -> tuple[T, Semaphore, int]:
        deadline = time.monotonic() + self.conflict_deadline
        attempt = 0
        known = self._known.get(key)
        fresh = known is None
        raw, revision = known if known is not None else await self._current(key)
        while True:
            try:
                changed = parse_semaphore(raw, key)
                result = change(changed)  # rule errors propagate: nothing is written
            except LockError:
                if fresh:
                    raise
                raw, revision = await self._current(key)  # the remembered value may be old: ask etcd
                fresh = True
                continue
            value = changed.to_json()
            new_revision, seen = await self._cas(key, value, revision)
            if new_revision is not None:
                self._known[key] = (value, new_revision)
                return result, changed, new_revision
            self._known.pop(key, None)
            self.conflicts += 1
            attempt += 1
            if time.monotonic() >= deadline:
                raise LockConflictError(
                    f"gave up on {key} after {attempt} conflicting writes in {self.conflict_deadline:.0f}s"
                )
            if seen is not None and seen[0] is not None and attempt <= self.immediate_retries:
                # The failed compare returned the winner's value (v3): retry against it at once,
                # with no read, before it is old again.
                raw, revision = seen[0], seen[1]
                self._known[key] = (raw, revision)
            else:
                # Other clients keep winning: step aside (full jitter, bounded), then read what is
                # current; a value learnt before the sleep would most likely be old after it.
                await asyncio.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt)))
                raw, revision = await self._current(key)
            fresh = True

    def _turn(self, key: str) -> asyncio.Lock:
        # asyncio.Lock hands itself to waiters in arrival order: the oldest caller goes next.
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = asyncio.Lock()
        return turn

    async def _current(self, key: str) -> tuple[bytes, int]:
        """The stored value and revision, creating locksmith's initial semaphore when absent."""
        raw, revision = await self._read(key)
        if raw is None:
            await self._create(key, new_semaphore().to_json())
            raw, revision = await self._read(key)
            if raw is None:  # deleted again between the two calls; work from the fresh value
                return new_semaphore().to_json(), 0
        self._known[key] = (raw, revision)
        return raw, revision

    async def lock(self, group: str, holder: str) -> int:
        _, _, revision = await self.update(group, lambda s: s.lock(holder))
        return revision

    async def unlock(self, group: str, holder: str) -> int:
        _, _, revision = await self.update(group, lambda s: s.unlock(holder))
        return revision

    async def set_max(self, group: str, new_max: int) -> tuple[int, int]:
        old, sem, _ = await self.update(group, lambda s: s.set_max(new_max))
        return old, sem.max

    async def group_states(self) -> dict[str, GroupState]:
        states = [state_from_value(key, value, rev) for key, value, rev in await self._list()]
        return {s.group: s for s in sorted(states, key=lambda s: s.group)}

    async def groups(self) -> dict[str, Semaphore]:
        return {g: s.semaphore for g, s in (await self.group_states()).items() if s.semaphore is not None}

    async def __aenter__(self) -> LockStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
