"""The update pump without any UI: a real asyncio loop, a real model and buffer, a fake clock where
time matters (unit tests of pure scheduling logic)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from coreroll.watch.model import FleetModel
from coreroll.watch.pump import UpdatePump
from coreroll.watch.updates import EtcdSnapshot, NodeStatus, Update, UpdateBuffer
from coreroll.wire.keys import status_key
from tui.sample import STATUS_KEY, machine_id, sample_updates, status_json


class FakeClock:
    """Advances `step` seconds on every read, and by what the pump sleeps."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step
        self.slept: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def make_pump(
    clock: FakeClock | None = None, on_repaint: Callable[[UpdatePump], None] = lambda p: None
) -> tuple[UpdatePump, FleetModel, UpdateBuffer]:
    model, buffer = FleetModel(), UpdateBuffer()
    pump: UpdatePump

    def repaint() -> None:
        on_repaint(pump)

    if clock is None:
        pump = UpdatePump(model, buffer, repaint=repaint, refresh_interval=0.01)
    else:
        pump = UpdatePump(
            model, buffer, repaint=repaint, refresh_interval=0.01, clock=clock, sleep=clock.sleep
        )
    return pump, model, buffer


def one_status(i: int, state: str = "UPDATE_STATUS_IDLE") -> NodeStatus:
    mid = machine_id(i)
    return NodeStatus(mid, STATUS_KEY.format(mid), status_json(mid, status=state, hostname=f"n{i}"))


async def test_what_the_sources_put_reaches_the_model_and_one_repaint_shows_it() -> None:
    painted = asyncio.Event()
    pump, model, buffer = make_pump(on_repaint=lambda p: painted.set())
    buffer.put(one_status(1))  # before attach: attach() flushes it
    pump.attach()
    await asyncio.wait_for(painted.wait(), 5)
    assert machine_id(1) in model.rows
    assert pump.take_changed() == {machine_id(1)}
    assert pump.take_changed() == set()  # handed out once

    painted.clear()
    buffer.put(one_status(2))  # the buffer going non-empty wakes the pump
    await asyncio.wait_for(painted.wait(), 5)
    assert machine_id(2) in model.rows and pump.repaints == 2


async def test_a_put_from_another_thread_wakes_the_pump() -> None:
    painted = asyncio.Event()
    pump, model, buffer = make_pump(on_repaint=lambda p: painted.set())
    pump.attach()
    thread = threading.Thread(target=buffer.put, args=(one_status(7),))
    thread.start()
    thread.join()
    await asyncio.wait_for(painted.wait(), 5)
    assert machine_id(7) in model.rows


async def test_a_big_first_listing_paints_early_then_fills_in() -> None:
    seen: list[tuple[int, int]] = []  # (rows in the model, updates still to apply) at each repaint
    done = asyncio.Event()

    def on_repaint(pump: UpdatePump) -> None:
        seen.append((len(pump.model.rows), pump.loading))
        if not pump.loading:
            done.set()

    clock = FakeClock(step=0.001)
    pump, _, buffer = make_pump(clock, on_repaint)
    pump.CHUNK, pump.SLICE, pump.FIRST_BUDGET, pump.LOAD_BUDGET = 10, 0.0, 0.002, 0.002
    pump.LOAD_REPAINT_SHARE = 1.0  # (the fake clock's ticks make a repaint as long as a budget)
    for update in sample_updates(300):
        buffer.put(update)
    pump.attach()
    await asyncio.wait_for(done.wait(), 5)
    first_rows, first_loading = seen[0]
    assert 10 <= first_rows < 300 and first_loading > 0  # rows show before the listing is in
    assert seen[-1] == (300, 0) and len(seen) >= 3


async def test_slow_repaints_take_a_bounded_share_of_a_big_first_listing() -> None:
    # a repaint of a big table costs as much as thousands of rows' model work: repainting after
    # every LOAD_BUDGET regardless made the repaints a quarter of the load on a busy machine
    clock = FakeClock(step=0.001)
    repaint_time = 0.0
    done = asyncio.Event()

    def slow_repaint(pump: UpdatePump) -> None:
        nonlocal repaint_time
        clock.now += 0.005  # each repaint takes 5 ms: 2.5 times a load budget
        repaint_time += 0.005
        if not pump.loading:
            done.set()

    pump, _, buffer = make_pump(clock, slow_repaint)
    pump.CHUNK, pump.SLICE, pump.FIRST_BUDGET, pump.LOAD_BUDGET = 10, 0.0, 0.002, 0.002
    for update in sample_updates(3000):
        buffer.put(update)
    start = clock.now
    pump.attach()
    await asyncio.wait_for(done.wait(), 10)
    assert pump.repaints >= 3  # the rows still fill in step by step
    assert repaint_time <= 0.15 * (clock.now - start)  # LOAD_REPAINT_SHARE, with some slack


async def test_model_work_waits_for_a_key_to_paint_first() -> None:
    clock = FakeClock()
    pump, model, buffer = make_pump(clock)
    buffer.put(one_status(1))
    pump.key_pressed()
    assert pump.key_recent()
    await pump.flush_sliced()
    assert clock.slept[0] == pump.KEY_QUIET  # the slice waited for the key's quiet time
    assert machine_id(1) in model.rows and pump.repaints == 1
    assert not pump.key_recent()


async def test_a_held_down_key_cannot_stall_the_data() -> None:
    clock = FakeClock()
    pump, model, buffer = make_pump(clock)

    async def key_repeat_while_waiting(seconds: float) -> None:
        await FakeClock.sleep(clock, seconds)
        pump.key_pressed()  # auto-repeat: a new key arrives during every wait

    pump.sleep = key_repeat_while_waiting
    buffer.put(one_status(1))
    pump.key_pressed()
    await asyncio.wait_for(pump.flush_sliced(), 5)
    assert machine_id(1) in model.rows and pump.repaints == 1
    # two waits (before the slice, before the repaint), each cut at KEY_WAIT_MAX
    assert sum(clock.slept) <= 2 * pump.KEY_WAIT_MAX + 1e-9


async def test_flushes_are_at_most_one_per_refresh_interval() -> None:
    timers: list[tuple[float, Callable[[], None]]] = []  # recorded, run by hand
    pump = UpdatePump(
        FleetModel(), UpdateBuffer(), repaint=lambda: None, refresh_interval=10.0,
        call_later=lambda delay, callback: timers.append((delay, callback)),
    )  # fmt: skip
    pump.attach()  # first wake: nothing flushed yet, so (almost) no wait
    assert [delay for delay, _ in timers] == [pytest.approx(0.001)]
    pump.wake()  # already scheduled: no second timer
    assert len(timers) == 1
    timers[0][1]()  # the timer fires: a flush starts (and ends: the buffer is empty)
    await asyncio.sleep(0)
    pump.buffer.put(one_status(1))  # new data right after a flush waits for the interval
    assert len(timers) == 2 and timers[1][0] == pytest.approx(10.0, abs=0.5)


async def test_frozen_keeps_applying_but_does_not_repaint() -> None:
    pump, model, buffer = make_pump(FakeClock())
    pump.frozen = True
    buffer.put(one_status(3))
    await pump.flush_sliced()
    assert machine_id(3) in model.rows and pump.repaints == 0


class Unappliable(NodeStatus):
    """An update whose application raises (stands for a model bug hit by outside data)."""


async def test_an_update_the_model_cannot_apply_is_noted_and_skipped() -> None:
    pump, model, buffer = make_pump(FakeClock())
    real_apply = model.apply

    def apply(update: Update) -> set[str]:
        if isinstance(update, Unappliable):
            raise ValueError("boom")
        return real_apply(update)

    model.apply = apply  # type: ignore[method-assign]
    buffer.put(Unappliable("m", status_key("m"), b"{}"))
    buffer.put(one_status(4))
    await pump.flush_sliced()
    assert pump.unusable_updates == 1
    assert machine_id(4) in model.rows  # the updates after it still arrive
    assert any("ignored Unappliable" in entry.message for _, entry in model.activity_after(0))


def test_the_pump_and_the_presenter_do_not_import_textual() -> None:
    code = "import sys, coreroll.watch.pump, tui.presenter; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


async def test_a_big_first_listing_in_pieces_ends_as_the_whole_listing_would() -> None:
    fleet = sample_updates(700)  # some nodes offline; the 500-row head, then NodeBatches
    snapshot = next(x for x in fleet if isinstance(x, EtcdSnapshot))
    alive_only = machine_id(9999)  # an alive key with no status yet (a node just booting)
    fleet = [replace(x, alive=x.alive | {alive_only}) if x is snapshot else x for x in fleet]
    whole = FleetModel()
    whole.apply_many(fleet)
    loaded = asyncio.Event()
    pump, model, buffer = make_pump(on_repaint=lambda p: None if p.loading else loaded.set())
    for update in fleet:
        buffer.put(update)
    pump.attach()
    await asyncio.wait_for(loaded.wait(), 10)
    assert len(model.rows) == len(whole.rows) == 701
    for mid, row in whole.rows.items():
        mine = model.rows[mid]
        assert (mine.online, mine.state, mine.hostname, mine.version, mine.group, mine.search_text) == (
            row.online, row.state, row.hostname, row.version, row.group, row.search_text
        ), mid  # fmt: skip
    assert model.rows[alive_only].online is True
    assert model.counts() == whole.counts()
    assert sum(not row.online for row in model.rows.values()) > 10  # the offline ones stayed offline


@pytest.mark.parametrize("enabled_before", [True, False])
async def test_the_collector_waits_while_the_first_listing_is_read_in(enabled_before: bool) -> None:
    import gc

    during: list[bool] = []
    loaded = asyncio.Event()

    def on_repaint(pump: UpdatePump) -> None:
        during.append(gc.isenabled())
        if not pump.loading:
            loaded.set()

    pump, model, buffer = make_pump(on_repaint=on_repaint)
    for update in sample_updates(1200):
        buffer.put(update)
    if not enabled_before:
        gc.disable()
    try:
        pump.attach()
        await asyncio.wait_for(loaded.wait(), 10)
        await asyncio.sleep(0)  # (the flush's last lines run after the repaint)
        assert len(model.rows) == 1200 and pump.settled
        assert during and not any(during)
        assert gc.isenabled() is enabled_before  # put back as it was
        loaded.clear()
        buffer.put(one_status(5, "UPDATE_STATUS_DOWNLOADING"))  # steady state: the collector runs
        await asyncio.wait_for(loaded.wait(), 5)
        assert model.rows[machine_id(5)].update_status == "UPDATE_STATUS_DOWNLOADING"
        assert during[-1] is enabled_before
    finally:
        gc.enable()
        gc.unfreeze()
