"""locksmithd: decide when a node that needs a reboot may reboot (reference section 3).

Strategies:
- `etcd-lock`: wait for the reboot window, take this machine's slot in the group's semaphore,
  reboot. A failed lock attempt (semaphore full, etcd down) is retried with backoff (5 s doubling
  to 5 min on the clock), and the window is re-checked after EVERY failed attempt (the Flatcar
  fix for coreos/bugs#1886). `holder exists` means the slot is already ours and counts as
  success. The node never reboots without its own id among the holders.
- `reboot`: wait for the window, reboot without a lock.
- `off`: never reboot (`Reboot strategy is "off" - locksmithd is exiting.`).
- `best-effort` (locksmith < 0.6): etcd reachable when the reboot is due -> etcd-lock, else reboot.
  Once it decided on etcd-lock it keeps waiting for the lock even if etcd goes away later.
Before locking, the manager first finishes releasing a lock left over from the previous boot
(locksmithd's `unlockIfHeld`), so a delayed post-boot release can never free the slot the node
is about to reboot with.

Public API:
- `STRATEGIES`, `RebootConfigError`.
- `RebootManager(strategy, machine_id, lock_store, group="", window=None, clock=RealClock(),
  reboot_fn=..., *, lock_waiter=None, tz=None, on_event=None, backoff_initial=5.0,
  backoff_cap=300.0, probe_timeout=2.0)`:
  `async run_until_rebooted() -> bool` (False for `off`; True once `reboot_fn` has been called),
  `async release_after_boot() -> None` (unlock this machine's slot with backoff; `holder does
  not exist` counts as success; only for etcd-lock / best-effort with a store),
  attributes `state` (starting|running|reboot-planned|rebooting, as coordinator.conf),
  `holds_lock`, `lock_revision` (etcd revision of our successful lock), `effective_strategy`,
  `status() -> dict` (the `reboot` object of the node status in etcd).
- `LockWaiter(store)`: one watch on the lock store for a whole process; `wait(group, seconds,
  clock)` returns when the group shows a free slot (waking at most that many waiters, oldest
  first) or after `seconds`. Without it a manager simply polls with its backoff.
- Re-exported from `coreroll.node.window`: `RebootWindow`, `WindowError`, `window_from_settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any

from coreroll.locks import HolderExistsError, HolderNotFoundError, LockStore
from coreroll.node.clock import Clock, RealClock
from coreroll.node.window import RebootWindow, WindowError, window_from_settings

log = logging.getLogger(__name__)

STRATEGIES = ("etcd-lock", "reboot", "off", "best-effort")
__all__ = [
    "STRATEGIES",
    "LockWaiter",
    "RebootConfigError",
    "RebootManager",
    "RebootWindow",
    "WindowError",
    "window_from_settings",
]


class RebootConfigError(ValueError):
    """A strategy locksmithd would refuse to run with."""


class LockWaiter:
    """Wakes waiting managers when their group's semaphore has free slots (one etcd watch per process)."""

    def __init__(self, store: LockStore) -> None:
        self._store = store
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._free: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lock-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async for state in self._store.watch():
                    if state.semaphore is not None:
                        self._free[state.group] = state.semaphore.semaphore
                        self._wake(state.group, state.semaphore.semaphore)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # etcd away: waiters fall back to their own backoff
                log.debug("lock watch failed: %s; retrying", exc)
            await asyncio.sleep(0.5)

    def _wake(self, group: str, count: int) -> None:
        queue = self._waiting.get(group)
        while queue and count > 0:
            future = queue.popleft()
            if not future.done():
                future.set_result(None)
                count -= 1

    async def wait(self, group: str, seconds: float, clock: Clock) -> None:
        """Until `group` shows a free slot for this waiter, or `seconds` on `clock` pass."""
        self.start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(group, deque()).append(future)
        timer = asyncio.ensure_future(clock.sleep(seconds))
        try:
            await asyncio.wait({future, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not future.done():
                future.cancel()
                with contextlib.suppress(ValueError):
                    self._waiting[group].remove(future)


class RebootManager:
    def __init__(
        self,
        strategy: str,
        machine_id: str,
        lock_store: LockStore | None,
        group: str = "",
        window: RebootWindow | None = None,
        clock: Clock | None = None,
        reboot_fn: Callable[[], Awaitable[None]] | None = None,
        *,
        lock_waiter: LockWaiter | None = None,
        tz: tzinfo | None = None,
        on_event: Callable[[str], None] | None = None,
        backoff_initial: float = 5.0,
        backoff_cap: float = 300.0,
        probe_timeout: float = 2.0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise RebootConfigError(
                f"unknown reboot strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}"
            )
        if strategy == "etcd-lock" and lock_store is None:
            raise RebootConfigError("reboot strategy etcd-lock needs etcd endpoints (LOCKSMITHD_ENDPOINT)")
        if not machine_id:
            raise RebootConfigError("a machine id is required to take the reboot lock")
        self.strategy = strategy
        self.machine_id = machine_id
        self.store = lock_store
        self.group = group
        self.window = window
        self.clock: Clock = clock or RealClock()
        self.reboot_fn = reboot_fn or _no_reboot
        self.lock_waiter = lock_waiter
        self.tz = tz
        self.on_event = on_event
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.probe_timeout = probe_timeout
        self.state = "starting"
        self.holds_lock = False
        self.lock_revision: int | None = None
        self.effective_strategy: str | None = None if strategy == "best-effort" else strategy
        self._release_lock = asyncio.Lock()
        self._released = False

    # ----- reporting -----------------------------------------------------------------------
    def _event(self, message: str) -> None:
        log.info("%s: %s", self.machine_id, message)
        if self.on_event is not None:
            self.on_event(message)

    def status(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "lock_group": self.group,
            "window": str(self.window) if self.window else None,
            "holds_lock": self.holds_lock,
            "state": self.state,
        }

    def _now(self) -> datetime:
        if self.tz is not None:
            return datetime.fromtimestamp(self.clock.now(), tz=self.tz)
        return datetime.fromtimestamp(self.clock.now()).astimezone()

    # ----- after boot ----------------------------------------------------------------------
    def _uses_lock(self) -> bool:
        return self.store is not None and self.strategy in ("etcd-lock", "best-effort")

    async def release_after_boot(self) -> None:
        """locksmithd's `unlockHeldLocks`: free this machine's slot, retrying with backoff.

        Runs in the caller's task (no background task outlives a killed node); concurrent callers
        wait for the first, and a caller cancelled half-way leaves the work to the next one."""
        if not self._uses_lock():
            return
        if self.state == "starting":
            self.state = "running"
        async with self._release_lock:
            if not self._released:
                await self._release_loop()
                self._released = True

    async def _release_loop(self) -> None:
        assert self.store is not None
        delay = self.backoff_initial
        while True:
            try:
                await self.store.unlock(self.group, self.machine_id)
                self._event("Unlocked existing lock for this machine")
                break
            except HolderNotFoundError:
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._event(f"Unlocking old locks failed: {exc}. Retrying in {_fmt(delay)}.")
                await self.clock.sleep(delay)
                delay = min(delay * 2, self.backoff_cap)
        self.holds_lock = False

    # ----- the reboot ----------------------------------------------------------------------
    async def run_until_rebooted(self) -> bool:
        """Called once the update engine says UPDATE_STATUS_UPDATED_NEED_REBOOT."""
        if self.strategy == "off":
            self._event('Reboot strategy is "off" - locksmithd is exiting.')
            return False
        self.state = "reboot-planned"
        strategy = self.strategy
        if strategy == "best-effort":
            strategy = "etcd-lock" if await self._etcd_reachable() else "reboot"
            self._event(
                f"best-effort: etcd {'reachable' if strategy == 'etcd-lock' else 'unreachable'}, "
                f"acting as {strategy}"
            )
        self.effective_strategy = strategy
        if strategy == "reboot":
            await self._wait_for_window()
        else:
            await self.release_after_boot()
            await self._lock_in_window()
        self.state = "rebooting"
        self._event(
            "Rebooting" + (f" holding the lock (revision {self.lock_revision})" if self.holds_lock else "")
        )
        await self.reboot_fn()
        # In a simulation reboot_fn returns once the machine is back: that boot must release again.
        self._released = False
        self.state = "starting"
        return True

    async def _etcd_reachable(self) -> bool:
        if self.store is None:
            return False
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel (gh-86296).
            async with asyncio.timeout(self.probe_timeout):
                await self.store.peek(self.group)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def _wait_for_window(self) -> None:
        if self.window is None:
            return
        while True:
            wait = self.window.seconds_until_open(self._now())
            if wait <= 0:
                return
            self._event(f"Waiting {_fmt(wait)} for the reboot window {self.window}")
            await self.clock.sleep(wait)

    async def _lock_in_window(self) -> None:
        assert self.store is not None
        delay = self.backoff_initial
        while True:
            await self._wait_for_window()
            try:
                self.lock_revision = await self.store.lock(self.group, self.machine_id)
                break
            except HolderExistsError:
                # Already ours (taken before an agent restart): locksmith treats ErrExist as success.
                sem, self.lock_revision = await self.store.get(self.group)
                if self.machine_id in sem.holders:
                    break
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._event(f"Failed to acquire lock: {exc}. Retrying in {_fmt(delay)}.")
                if self.lock_waiter is not None:
                    await self.lock_waiter.wait(self.group, delay, self.clock)
                else:
                    await self.clock.sleep(delay)
                delay = min(delay * 2, self.backoff_cap)
        self.holds_lock = True
        self._event(f"Acquired reboot lock in group {self.group or '(default)'}")


async def _no_reboot() -> None:
    raise RuntimeError("RebootManager has no reboot_fn")


def _fmt(seconds: float) -> str:
    """Seconds the way Go prints a time.Duration (10s, 1m20s, 5m0s)."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
