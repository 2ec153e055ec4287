"""locksmithd strategies against a real etcd, on a fast simulated clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import free_port
from coreroll.locks import LockStore, open_lock_store
from coreroll.node.clock import ScaledClock
from coreroll.node.reboot import LockWaiter, RebootConfigError, RebootManager
from coreroll.node.window import RebootWindow

ME = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER = "ffffffffffffffffffffffffffffffff"
# Thursday 2026-11-26 22:00 UTC
THU_2200 = datetime(2026, 11, 26, 22, 0, tzinfo=UTC).timestamp()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
async def store(clean_etcd: str) -> AsyncIterator[LockStore]:
    lock_store = open_lock_store(EtcdConfig(endpoints=(clean_etcd,)))
    yield lock_store
    await lock_store.close()


class Machine:
    """Records reboots together with who held the lock at that moment."""

    def __init__(self, store: LockStore | None, group: str, clock: ScaledClock) -> None:
        self.store = store
        self.group = group
        self.clock = clock
        self.reboots: list[tuple[float, list[str]]] = []
        self.events: list[str] = []

    async def reboot(self) -> None:
        holders: list[str] = []
        if self.store is not None:
            try:
                holders = (await self.store.get(self.group))[0].holders
            except Exception:
                holders = []
        self.reboots.append((self.clock.now(), holders))

    def manager(self, strategy: str, store: LockStore | None, **kwargs: object) -> RebootManager:
        return RebootManager(
            strategy,
            ME,
            store,
            self.group,
            clock=self.clock,
            reboot_fn=self.reboot,
            tz=UTC,
            on_event=self.events.append,
            **kwargs,  # type: ignore[arg-type]
        )


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(RebootConfigError, match="unknown reboot strategy 'sometimes'"):
        RebootManager("sometimes", ME, None)
    with pytest.raises(RebootConfigError, match="etcd-lock needs etcd endpoints"):
        RebootManager("etcd-lock", ME, None)


async def test_off_never_reboots() -> None:
    machine = Machine(None, "", ScaledClock(1000))
    assert await machine.manager("off", None).run_until_rebooted() is False
    assert machine.reboots == []
    assert machine.events == ['Reboot strategy is "off" - locksmithd is exiting.']


async def test_reboot_strategy_waits_for_the_window() -> None:
    clock = ScaledClock(36000, start=THU_2200)  # an hour in 0.1 s
    machine = Machine(None, "", clock)
    window = RebootWindow.parse("Thu 23:00", "30m")
    assert await machine.manager("reboot", None, window=window).run_until_rebooted() is True
    [(when, _)] = machine.reboots
    assert window.contains(datetime.fromtimestamp(when, UTC))
    assert any(
        e.startswith(("Waiting 59m", "Waiting 1h0m")) and e.endswith("for the reboot window Thu 23:00 30m")
        for e in machine.events
    )


async def test_etcd_lock_waits_for_a_free_slot_and_reboots_holding_it(store: LockStore) -> None:
    clock = ScaledClock(1000)
    await store.lock("lb", OTHER)
    machine = Machine(store, "lb", clock)
    manager = machine.manager("etcd-lock", store)
    task = asyncio.create_task(manager.run_until_rebooted())
    await until(lambda: sum("semaphore is at 0" in e for e in machine.events) >= 2)
    assert machine.reboots == [] and not manager.holds_lock
    assert "Failed to acquire lock: semaphore is at 0. Retrying in 5s." in machine.events
    assert "Failed to acquire lock: semaphore is at 0. Retrying in 10s." in machine.events
    await store.unlock("lb", OTHER)
    assert await asyncio.wait_for(task, 10) is True
    [(_, holders)] = machine.reboots
    assert holders == [ME]
    assert manager.holds_lock and manager.lock_revision is not None
    # a different group is not affected by "lb"
    sem, _ = await store.get("")
    assert sem.holders == []


async def test_lock_groups_are_independent(store: LockStore) -> None:
    await store.lock("db", OTHER)
    machine = Machine(store, "web", ScaledClock(1000))
    assert await asyncio.wait_for(machine.manager("etcd-lock", store).run_until_rebooted(), 10)
    assert machine.reboots[0][1] == [ME]
    assert (await store.get("db"))[0].holders == [OTHER]


@pytest.mark.slow
async def test_window_rechecked_after_every_failed_lock_attempt(store: LockStore) -> None:
    """The Flatcar fix: the slot frees after the window closed, so the node waits for the next one."""
    clock = ScaledClock(36000, start=THU_2200 + 3600 + 1800)  # Thu 23:30, inside the window
    window = RebootWindow.parse("23:00", "1h")
    await store.lock("", OTHER)
    machine = Machine(store, "", clock)
    task = asyncio.create_task(machine.manager("etcd-lock", store, window=window).run_until_rebooted())
    midnight_10 = THU_2200 + 2 * 3600 + 600
    await until(lambda: clock.now() >= midnight_10)
    assert machine.reboots == []
    await store.unlock("", OTHER)  # the slot frees outside the window
    await asyncio.wait_for(task, 10)
    [(when, holders)] = machine.reboots
    assert holders == [ME]
    rebooted = datetime.fromtimestamp(when, UTC)
    assert window.contains(rebooted) and rebooted.day == 27  # Friday's window, not Thursday's
    assert any("Waiting" in e and "for the reboot window 23:00 1h" in e for e in machine.events)


async def test_a_lock_we_already_hold_is_ours(store: LockStore) -> None:
    # Left over from before an agent restart: the manager reboots with it, never with another id.
    await store.lock("", ME)
    machine = Machine(store, "", ScaledClock(1000))
    assert await asyncio.wait_for(machine.manager("etcd-lock", store).run_until_rebooted(), 10)
    assert machine.reboots[0][1] == [ME]


async def test_release_after_boot(store: LockStore) -> None:
    await store.lock("", ME)
    machine = Machine(store, "", ScaledClock(1000))
    manager = machine.manager("etcd-lock", store)
    await manager.release_after_boot()
    assert (await store.get(""))[0].holders == []
    assert machine.events == ["Unlocked existing lock for this machine"]
    # not holding is success too ("holder does not exist")
    again = machine.manager("etcd-lock", store)
    await asyncio.wait_for(again.release_after_boot(), 5)
    # reboot strategy never touches the lock
    await store.lock("", ME)
    await machine.manager("reboot", store).release_after_boot()
    assert (await store.get(""))[0].holders == [ME]


def dead_store() -> LockStore:
    return open_lock_store(EtcdConfig(endpoints=(f"http://127.0.0.1:{free_port()}",), timeout=0.3))


async def test_release_retries_with_doubling_backoff_while_etcd_is_down() -> None:
    store = dead_store()
    machine = Machine(None, "", ScaledClock(1000))
    manager = machine.manager("etcd-lock", store)
    task = asyncio.create_task(manager.release_after_boot())
    await until(lambda: len(machine.events) >= 4, within=20)
    task.cancel()
    await store.close()
    delays = [e.rsplit("Retrying in ", 1)[1] for e in machine.events[:4]]
    assert delays == ["5s.", "10s.", "20s.", "40s."]
    assert machine.events[0].startswith("Unlocking old locks failed: ")


async def test_etcd_down_when_the_reboot_is_due() -> None:
    # etcd-lock: keeps waiting, never reboots without the lock
    store = dead_store()
    machine = Machine(None, "", ScaledClock(1000))
    locked = asyncio.create_task(machine.manager("etcd-lock", store).run_until_rebooted())
    await until(lambda: len(machine.events) >= 3, within=20)
    assert machine.reboots == [] and not locked.done()
    locked.cancel()
    # best-effort: etcd unreachable, so it reboots like `reboot`
    best = Machine(None, "", ScaledClock(1000))
    manager = best.manager("best-effort", store)
    assert await asyncio.wait_for(manager.run_until_rebooted(), 20) is True
    assert manager.effective_strategy == "reboot" and len(best.reboots) == 1
    assert "best-effort: etcd unreachable, acting as reboot" in best.events
    await store.close()


async def test_best_effort_with_etcd_takes_the_lock(store: LockStore) -> None:
    await store.lock("", OTHER)
    machine = Machine(store, "", ScaledClock(1000))
    manager = machine.manager("best-effort", store)
    task = asyncio.create_task(manager.run_until_rebooted())
    await until(lambda: any("semaphore is at 0" in e for e in machine.events))
    assert machine.reboots == [] and manager.effective_strategy == "etcd-lock"
    await store.unlock("", OTHER)
    await asyncio.wait_for(task, 10)
    assert machine.reboots[0][1] == [ME]


async def test_lock_waiter_wakes_on_release_without_polling(store: LockStore) -> None:
    await store.lock("", OTHER)
    clock = ScaledClock(1)  # real time: the backoff alone would take an hour
    waiter = LockWaiter(store)
    machine = Machine(store, "", clock)
    manager = machine.manager("etcd-lock", store, lock_waiter=waiter, backoff_initial=3600.0)
    task = asyncio.create_task(manager.run_until_rebooted())
    await until(lambda: any("semaphore is at 0" in e for e in machine.events))
    await store.unlock("", OTHER)
    await asyncio.wait_for(task, 5)
    assert machine.reboots[0][1] == [ME]
    await waiter.stop()


async def test_one_manager_across_reboots(store: LockStore) -> None:
    machine = Machine(store, "", ScaledClock(1000))
    manager = machine.manager("etcd-lock", store)
    await manager.release_after_boot()
    assert await asyncio.wait_for(manager.run_until_rebooted(), 10)
    assert (await store.get(""))[0].holders == [ME] and manager.holds_lock
    await manager.release_after_boot()  # the next boot frees the slot again
    assert (await store.get(""))[0].holders == [] and not manager.holds_lock
    assert await asyncio.wait_for(manager.run_until_rebooted(), 10)
    assert [holders for _, holders in machine.reboots] == [[ME], [ME]]
