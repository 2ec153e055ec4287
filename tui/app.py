"""`DashApp`: the coreroll dashboard (Textual).

    buffer = UpdateBuffer()
    sources = [EtcdSource(config, buffer.put), FeedSource(url, buffer.put)]
    app = DashApp(FleetModel(), buffer=buffer, sources=sources, actions=Actions(...),
                  read_only=False, cluster="http://127.0.0.1:2379")
    app.run()

Data flow (one way): sources run as async workers and put `coreroll.watch.updates` messages into
`buffer`; when the buffer goes non-empty the app schedules ONE flush, at most every
`refresh_interval` seconds (default 0.2 s = 5 Hz). The flush (a worker) applies the updates to the
model in slices of SLICE seconds, yielding between slices so keys stay responsive, then repaints
every widget in a single `batch_update()`. The first listing of a big fleet is cut into pieces
(`tui.intake`) so the first rows show at once and the rest fills in. The node table gets its rows
from `tui.rows.RowView` (the model's filter and sort, re-run only when a row moves) plus the
changed machine ids, so only changed lines on screen are redrawn. `f` (freeze) keeps applying
data to the model but stops repainting. Keys come first: for KEY_QUIET after a key the flush
waits before its next slice or repaint, and the main screen updates without waiting for a frame,
so a keypress shows within a few milliseconds of its handler (bench/dashboard.py: p99 < 35 ms at
1,000 changes/s).

Keys are `tui.keymap.DashAction` (how to add one: that module's docstring). The screens ask the
app for changes with typed messages (`tui.messages`), handled in the section "requests from the
screens" below; a mutating key's `InterventionRequested` runs its handler from `tui.interventions`
in a worker, which calls `coreroll.watch.actions.Actions`. In read-only mode `check_action` hides
those keys, the handler runner and the actions object refuse them as well. Every action reports
its outcome with `notify()`, which shows messages as plain text with control characters made
visible (they quote hostnames, keys and server replies).

SSH hygiene: exits on SIGHUP and when stdin stops being a TTY (checked every 5 s); honours
NO_COLOR (Textual's monochrome filter); `mouse=False` by default in `tui.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import events, on
from textual.app import App
from textual.binding import BindingType
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel

from coreroll.textsafe import visible
from coreroll.watch.model import FleetModel
from coreroll.watch.query import QueryError
from coreroll.watch.updates import Update, UpdateBuffer
from tui import interventions
from tui.intake import split_update
from tui.interventions import ActionLayer
from tui.keymap import APP_BINDINGS, action_allowed, help_rows, keymap_from_env
from tui.messages import (
    DetailRequested,
    FilterRequested,
    FreezeRequested,
    InterventionRequested,
    SortRequested,
)
from tui.rows import RowView
from tui.screens.detail import NodeDetailScreen
from tui.screens.main import MainScreen
from widgets.channel_bar import ChannelBar
from widgets.event_log import EventLog
from widgets.header import DashHeader, HeaderInfo
from widgets.help import HelpScreen
from widgets.lock_panel import LockPanel
from widgets.node_columns import SORT_CYCLE
from widgets.node_table import NodeTable

HistoryLoader = Callable[[str], Awaitable[list[dict[str, Any]]]]


class Source(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> Any: ...


class DashApp(App[int]):
    SLICE = 0.005  # seconds of model work between yields to the event loop
    FIRST_BUDGET = 0.04  # seconds of model work before the very first repaint
    LOAD_BUDGET = 1.0  # seconds of model work per repaint while a big backlog is read in
    CHUNK = 500  # first-listing statuses applied before the first paint
    KEY_QUIET = 0.04  # seconds after a key during which model work waits (the key paints first)
    KEY_WAIT_MAX = 0.1  # the longest model work waits for keys in one go

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "coreroll"
    BINDINGS: ClassVar[list[BindingType]] = list(APP_BINDINGS)
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        model: FleetModel | None = None,
        *,
        buffer: UpdateBuffer | None = None,
        sources: Sequence[Source] = (),
        actions: ActionLayer | None = None,
        read_only: bool = False,
        cluster: str = "",
        refresh_interval: float = 0.2,
        history: HistoryLoader | None = None,
        clock: Callable[[], float] = time.time,
        watch_tty: bool = True,
        sources_configured: Sequence[str] = ("etcd", "server"),
    ) -> None:
        super().__init__()
        self.model = model if model is not None else FleetModel()
        self.buffer = buffer if buffer is not None else UpdateBuffer()
        self.sources = list(sources)
        self.actions = actions
        self.read_only = read_only
        self.cluster = cluster
        self.refresh_interval = refresh_interval
        self.history = history
        self.clock = clock
        self.watch_tty = watch_tty
        self.sources_configured = tuple(sources_configured)
        self.view = RowView("machine", False)
        self.frozen = False
        self._pending: set[str] = set()
        self._rows_dirty = True
        self._flush_scheduled = False
        self._flushing = False
        self._flush_again = False
        self._gc_frozen = False
        self._ticks = 0
        self._last_flush = 0.0
        self._painted_at = 0.0
        self._repaint_cost = 0.0
        self._key_at = 0.0
        self._backlog: deque[Update] = deque()
        self.on_drain: Callable[[], None] | None = None  # bench hook: right after the buffer is drained
        self._activity_seq = 0
        self._locks_version = -1
        self._channels_version = -1
        self._channels_at = 0.0
        self._thread_id = threading.get_ident()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.repaints = 0
        self.unusable_updates = 0  # updates the model refused with an exception (see _unusable)
        self.on_repaint: Callable[[], None] | None = None  # bench/test hook, after each repaint
        self.buffer.on_first = self._wake_threadsafe
        self.keymap = keymap_from_env()  # binding id -> keys (COREROLL_KEYMAP)
        if self.keymap:
            self.set_keymap(self.keymap)

    # -- lifecycle ------------------------------------------------------------------------
    async def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        await self.push_screen(MainScreen())
        self.main_screen.table.set_sort(self.sort_column, self.sort_reverse)
        for source in self.sources:
            self.run_worker(source.run(), group="sources", exit_on_error=False, description=repr(source))
        self.set_interval(1.0, self._clock_tick)
        if self.watch_tty and not self.is_headless:
            try:
                self._loop.add_signal_handler(signal.SIGHUP, self._lost_terminal)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
            self.set_interval(5.0, self._check_tty)
        self._wake()

    async def on_unmount(self) -> None:
        for source in self.sources:
            result = source.stop()
            if asyncio.iscoroutine(result):
                await result

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast; `message` and `title` quote outside data, so they are never markup and never
        reach the terminal with control characters in them."""
        super().notify(
            visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False
        )

    def _lost_terminal(self) -> None:
        self.exit(0)

    def _check_tty(self) -> None:
        try:
            if not sys.stdin.isatty():
                self.exit(0)
        except (ValueError, OSError):  # stdin closed
            self.exit(0)

    @property
    def main_screen(self) -> MainScreen:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("main screen not mounted")

    # -- the batched repaint --------------------------------------------------------------
    def _wake_threadsafe(self) -> None:
        if threading.get_ident() == self._thread_id:
            self._wake()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._flush_scheduled or self._loop is None:  # not running yet: on_mount flushes
            return
        self._flush_scheduled = True
        delay = max(0.0, self._last_flush + self.refresh_interval - time.monotonic())
        self.set_timer(max(delay, 0.001), self._start_flush)

    def _start_flush(self) -> None:
        if self._flushing:  # the running flush picks the new data up before it ends
            self._flush_scheduled = False
            self._flush_again = True
            return
        self._flushing = True
        self.run_worker(self._flush_sliced(), group="flush", description="apply updates + repaint")

    async def _flush_sliced(self) -> None:
        """Apply the buffered updates in slices of SLICE seconds, yielding to the event loop
        between slices so keys are handled promptly, then repaint once. A big backlog (the first
        listing of a large fleet) gets a first repaint after FIRST_BUDGET seconds of work, so rows
        show at once, and then one repaint per LOAD_BUDGET seconds until it is all read in."""
        try:
            self._flush_scheduled = False
            self._flush_again = False
            self._take_buffer()
            while True:
                self._last_flush = started = time.monotonic()
                if not self.repaints:
                    budget = self.FIRST_BUDGET
                elif not self._gc_frozen:  # still reading in the first listing
                    budget = self.LOAD_BUDGET
                else:  # steady state: when behind, show what is applied every refresh interval
                    budget = self.refresh_interval
                while self._backlog and time.monotonic() - started < budget:
                    await self._after_keys()
                    self._apply_slice(self.SLICE)
                    await asyncio.sleep(0)
                if not self.frozen:
                    await self._after_keys()
                    self.repaint()
                if not self._backlog:
                    break
                await asyncio.sleep(0)
            if not self._gc_frozen and (len(self.model.rows) >= 1000 or self.repaints > 8):
                # the first listing of a big fleet is in: move it out of the collector's way, so
                # later full collections do not walk 10,000s of long-lived rows (pauses = lag)
                gc.freeze()
                # and run full collections rarely (each walks every young survivor: 100-200 ms
                # pauses every few seconds at 1,000 changes/s); cyclic garbage waits longer
                first, second, _ = gc.get_threshold()
                gc.set_threshold(first, second, 1000)
                self._gc_frozen = True  # (also: the first listing is in)
        finally:
            self._flushing = False
        if self._flush_again or len(self.buffer):
            self._wake()

    async def _after_keys(self) -> None:
        """Model work steps aside while a key's effect is on its way to the screen (KEY_QUIET
        after the last key), so a keypress never queues behind a data slice or a data repaint;
        at most KEY_WAIT_MAX at a time, so a held-down key cannot stall the data."""
        deadline = time.monotonic() + self.KEY_WAIT_MAX
        while True:  # a new key while waiting moves the end of the quiet time
            wait = min(self._key_at + self.KEY_QUIET, deadline) - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def key_recent(self) -> bool:
        """A key was pressed less than KEY_QUIET ago (its effect may still be on its way)."""
        return time.monotonic() - self._key_at < self.KEY_QUIET

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._key_at = time.monotonic()
        await super().on_event(event)

    def flush(self) -> None:
        """Apply everything the sources delivered now, then repaint once (unless frozen)."""
        self._last_flush = time.monotonic()
        self._take_buffer()
        while self._backlog:
            self._apply_slice(3600.0)
        if not self.frozen:
            self.repaint()

    def _take_buffer(self) -> None:
        batch = self.buffer.drain()
        if self.on_drain is not None:
            self.on_drain()
        for update in batch:
            self._backlog.extend(split_update(update, self.model, self.CHUNK))

    def _apply_slice(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        backlog, apply, changed = self._backlog, self.model.apply, self._pending
        n = 0
        while backlog:
            update = backlog.popleft()
            try:
                changed |= apply(update)
            except Exception as exc:  # data from outside must never end the dashboard
                self._unusable(update, exc)
            n += 1
            if n % 64 == 0 and time.monotonic() > deadline:
                break
        if changed:
            self._rows_dirty = True

    def _unusable(self, update: Update, exc: Exception) -> None:
        """An update the model could not apply: say so in the event log and carry on (the model
        reads every value defensively, so this is a last resort, not the normal path)."""
        self.unusable_updates += 1
        what = f"{type(update).__name__} {getattr(update, 'key', '') or getattr(update, 'kind', '')}"
        self.model.note(f"ignored {what.strip()}: {type(exc).__name__}: {exc}"[:300], "error", kind="BadData")

    @property
    def loading(self) -> int:
        """Updates received but not applied yet (a big first listing being read in)."""
        return len(self._backlog)

    def repaint(self, full: bool = False) -> None:
        """Redraw every panel from the model in one batch; only changed table lines repaint."""
        try:
            self._repaint(full)
        except NoMatches:  # the screen is being torn down (app exiting)
            pass

    def _repaint(self, full: bool) -> None:
        try:
            main = self.main_screen
            table = main.query_one("#nodes", NodeTable)
        except (LookupError, NoMatches):  # not composed yet, or the app is shutting down
            return
        if not main.is_attached:
            return
        started = time.monotonic()
        with self.batch_update():
            if self._rows_dirty or full:
                self._update_rows(table, full)
            table.stale = self.stale_sources() != ()
            self._repaint_panels(main, full)
            if isinstance(self.screen, NodeDetailScreen):
                self.screen.refresh_from_model()
        self._painted_at = time.monotonic()
        self._repaint_cost = self._painted_at - started
        self.repaints += 1
        if self.on_repaint is not None:
            self.on_repaint()

    def _update_rows(self, table: NodeTable, full: bool) -> None:
        changed, self._pending = self._pending, set()
        rows = self.view.rows(self.model, table.rows, table.row_index, changed, full)
        table.set_rows(rows, None if full else changed, same_order=self.view.same_order)
        self._rows_dirty = False

    def _repaint_panels(self, main: MainScreen, full: bool) -> None:
        model = self.model
        now = self.clock()
        main.query_one("#header", DashHeader).show(
            HeaderInfo(
                cluster=self.cluster,
                etcd=model.connections.get("etcd") if "etcd" in self.sources_configured else None,
                server=model.connections.get("server") if "server" in self.sources_configured else None,
                counts=model.counts(),
                total=len(model.rows),
                shown=len(main.table.rows),
                last_update=model.last_change_at,
                read_only=self.read_only,
                frozen=self.frozen,
                loading=len(self._backlog),
                now=now,
            )
        )
        # channel progress scans every row: at most once a second unless the channels changed
        if full or model.channels_version != self._channels_version or now - self._channels_at >= 1.0:
            self._channels_version = model.channels_version
            self._channels_at = now
            main.query_one("#channels", ChannelBar).show(model.channels(), model.groups())
        if full or model.locks_version != self._locks_version:
            self._locks_version = model.locks_version
            main.query_one("#locks", LockPanel).show(model.lock_groups(), now, self.node_name)
        if model.activity_seq != self._activity_seq:
            entries = model.activity_after(self._activity_seq)
            self._activity_seq = model.activity_seq
            main.query_one("#events", EventLog).add(entry for _, entry in entries)

    def _clock_tick(self) -> None:
        """Once a second: ages in the lock panel and header ("last ok 12s ago")."""
        self._ticks += 1
        if self._gc_frozen and self._ticks % 10 == 0:
            # what survived the last 10 s is long-lived (rows, cached strips): take it out of the
            # collector's walk too, so full collections stay short while statuses stream in.
            # Replaced rows are freed by reference counting, frozen or not.
            gc.freeze()
        if self.frozen:
            return
        try:
            main = self.main_screen
        except LookupError:
            return
        now = self.clock()
        with self.batch_update(), contextlib.suppress(NoMatches):
            if self.model.lock_groups() and any(g.holders for g in self.model.lock_groups()):
                main.query_one("#locks", LockPanel).show(self.model.lock_groups(), now, self.node_name)
            if self.stale_sources():
                self._repaint_panels(main, False)

    def node_name(self, machine_id: str) -> str | None:
        row = self.model.get(machine_id)
        return row.hostname if row is not None else None

    def stale_sources(self) -> tuple[str, ...]:
        return tuple(s for s in self.sources_configured if self.model.is_stale(s))

    # -- view state -----------------------------------------------------------------------
    @property
    def query(self) -> str:
        return self.view.query_text

    @property
    def sort_column(self) -> str:
        return self.view.sort_column

    @property
    def sort_reverse(self) -> bool:
        return self.view.reverse

    def set_query(self, text: str) -> None:
        """Filter the table (raises QueryError for a bad filter, leaving the old one in place)."""
        if self.view.set_query(text, self.model):
            self._rows_dirty = True
            self.repaint()

    def cycle_sort(self) -> None:
        columns = list(SORT_CYCLE)
        index = columns.index(self.sort_column) if self.sort_column in columns else -1
        self.set_sort(columns[(index + 1) % len(columns)], False)

    def reverse_sort(self) -> None:
        self.set_sort(self.sort_column, not self.sort_reverse)

    def set_sort(self, column: str, reverse: bool) -> None:
        self.view.set_sort(column, reverse)
        self.main_screen.table.set_sort(column, reverse)
        self._rows_dirty = True
        self.repaint()
        self.notify(f"sorted by {column}{' (reversed)' if reverse else ''}", timeout=2)

    def toggle_freeze(self) -> None:
        self.frozen = not self.frozen
        if self.frozen:
            self.main_screen.query_one("#header", DashHeader).show(self._frozen_header_info())
            self.notify("display frozen; data keeps flowing (f to resume)", timeout=3)
        else:
            self.flush()
            self.repaint(full=True)
            self.notify("display live again", timeout=2)

    def _frozen_header_info(self) -> HeaderInfo:
        header = self.main_screen.query_one("#header", DashHeader)
        info = header.info or HeaderInfo(self.cluster, None, None)
        return HeaderInfo(**{**info.__dict__, "frozen": self.frozen})

    def open_detail(self, machine_id: str) -> None:
        self.push_screen(NodeDetailScreen(self.model, machine_id, self.history))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(self.help_rows(), title="coreroll keys" + (" [R] read-only" if self.read_only else ""))
        )

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(key, description, binding id) for every binding, as currently mapped."""
        classes = (type(self.main_screen), NodeTable, type(self))
        return help_rows(classes, self.keymap, self.read_only, self.get_key_display)

    # -- read-only ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action_allowed(action, parameters, self.read_only)

    # -- requests from the screens (typed messages, tui.messages) ---------------------------
    @on(FilterRequested)
    def _filter_requested(self, message: FilterRequested) -> None:
        try:
            self.set_query(message.text)
        except QueryError as exc:  # the screen checks first; typed text must not end the app
            self.notify(f"bad filter: {exc}", severity="error")

    @on(SortRequested)
    def _sort_requested(self, message: SortRequested) -> None:
        if message.reverse_only:
            self.reverse_sort()
        else:
            self.cycle_sort()

    @on(FreezeRequested)
    def _freeze_requested(self, message: FreezeRequested) -> None:
        self.toggle_freeze()

    @on(DetailRequested)
    def _detail_requested(self, message: DetailRequested) -> None:
        self.open_detail(message.machine_id)

    @on(InterventionRequested)
    def _intervention_requested(self, message: InterventionRequested) -> None:
        self.run_worker(
            interventions.run(self, message.action, message.selection),
            group="actions",
            description=message.action.id,
        )


def css_path() -> Path:
    return Path(__file__).with_name("app.tcss")
