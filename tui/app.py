"""`DashApp`: the coreroll dashboard (Textual).

    buffer = UpdateBuffer()
    sources = [EtcdSource(config, buffer.put), FeedSource(url, buffer.put)]
    app = DashApp(FleetModel(), buffer=buffer, sources=sources, actions=Actions(...),
                  read_only=False, cluster="http://127.0.0.1:2379")
    app.run()

The app is thin: it wires three parts that know nothing of each other.
- `coreroll.watch.pump.UpdatePump` (plain asyncio): sources run as async workers and put
  `coreroll.watch.updates` messages into `buffer`; the pump applies them to the model in time
  slices, at most every `refresh_interval` seconds (default 0.2 s = 5 Hz), and calls `repaint`.
  Keys come first: for KEY_QUIET after a key the pump waits before its next slice or repaint, and
  the main screen updates without waiting for a frame (`tui.textual_compat.PromptScreen`), so a
  keypress shows within a few milliseconds of its handler (bench/dashboard.py).
- `tui.presenter.Presenter` (plain Python): the table's rows (the model's filter and sort, re-run
  only when a row moves) and each panel's data, built from the model.
- this app: hands the presenter's data to the widgets in one `batch_update()`; only changed table
  lines are redrawn. `f` (freeze) keeps applying data to the model but stops repainting.

Keys are `tui.keymap.DashAction` (how to add one: that module's docstring). The screens ask the
app for changes with typed messages (`tui.messages`), handled in the section "requests from the
screens" below; a mutating key's `InterventionRequested` runs its handler from `tui.interventions`
in a worker, which calls `coreroll.watch.actions.Actions`. In read-only mode `check_action` hides
those keys, the handler runner and the actions object refuse them as well. Every action reports
its outcome with `notify()`, which shows messages as plain text with control characters made
visible (they quote hostnames, keys and server replies).

SSH hygiene: exits on SIGHUP and when stdin stops being a TTY (checked every 5 s); honours
NO_COLOR (Textual's monochrome filter); the mouse is off unless `--mouse` (`DashboardSetup.mouse`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import App
from textual.binding import BindingType
from textual.command import Provider
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel

from coreroll.textsafe import visible
from coreroll.watch.model import FleetModel
from coreroll.watch.pump import UpdatePump
from coreroll.watch.query import QueryError
from coreroll.watch.setup import HistoryLoader, Source
from coreroll.watch.updates import UpdateBuffer
from tui import interventions
from tui.interventions import ActionLayer
from tui.keymap import APP_BINDINGS, action_allowed, help_rows
from tui.keymap_config import LoadedKeymap, load_keymap
from tui.messages import (
    DetailRequested,
    FilterRequested,
    FreezeRequested,
    InterventionRequested,
    SortRequested,
)
from tui.palette import DashCommands, NodeCommands
from tui.presenter import Presenter
from tui.rows import RowView
from tui.saved_filters import FilterStore
from tui.screens.detail import NodeDetailScreen
from tui.screens.main import MainScreen
from widgets.channel_bar import ChannelBar
from widgets.event_log import EventLog
from widgets.header import DashHeader, HeaderInfo
from widgets.help import HelpScreen
from widgets.lock_panel import LockPanel
from widgets.node_columns import SORT_CYCLE
from widgets.node_table import NodeTable


class DashApp(App[int]):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "coreroll"
    BINDINGS: ClassVar[list[BindingType]] = list(APP_BINDINGS)
    ENABLE_COMMAND_PALETTE = True  # opened by DashAction.COMMAND_PALETTE's binding (Textual adds none)
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {DashCommands, NodeCommands}

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
        keymap: LoadedKeymap | None = None,
        theme: str | None = None,
        filter_store: FilterStore | None = None,
    ) -> None:
        super().__init__()
        if theme is not None:
            if theme not in self.available_themes:
                raise ValueError(
                    f"no theme {theme!r}; the themes: {', '.join(sorted(self.available_themes))}"
                )
            self.theme = theme
        self.filter_store = filter_store if filter_store is not None else FilterStore()
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
        self.presenter = Presenter(
            self.model,
            cluster=cluster,
            read_only=read_only,
            sources_configured=sources_configured,
            clock=clock,
        )
        self.pump = UpdatePump(
            self.model,
            self.buffer,
            repaint=self.repaint,
            refresh_interval=refresh_interval,
            call_later=self.set_timer,
            start=lambda flush: self.run_worker(flush, group="flush", description="apply updates + repaint"),
        )
        self._rows_dirty = True
        self._ticks = 0
        self.repaints = 0
        self.on_repaint: Callable[[], None] | None = None  # bench/test hook, after each repaint
        # keys.toml / --keymap and COREROLL_KEYMAP, checked (tui.keymap_config); by default the
        # environment only. Raises KeymapError naming every problem.
        loaded = keymap if keymap is not None else load_keymap(type(self))
        self.keymap = loaded.keys  # binding id -> keys
        self.keymap_sources = loaded.sources
        if self.keymap:
            self.set_keymap(self.keymap)

    # -- lifecycle ------------------------------------------------------------------------
    async def on_mount(self) -> None:
        await self.push_screen(MainScreen())
        self.main_screen.table.set_sort(self.sort_column, self.sort_reverse)
        for source in self.sources:
            self.run_worker(source.run(), group="sources", exit_on_error=False, description=repr(source))
        self.set_interval(1.0, self._clock_tick)
        if self.watch_tty and not self.is_headless:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._lost_terminal)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
            self.set_interval(5.0, self._check_tty)
        self.pump.attach()

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

    # -- the update pump (coreroll.watch.pump) -----------------------------------------------
    @property
    def frozen(self) -> bool:
        return self.pump.frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.pump.frozen = value

    @property
    def on_drain(self) -> Callable[[], None] | None:
        """Bench hook: called right after the pump drains the buffer."""
        return self.pump.on_drain

    @on_drain.setter
    def on_drain(self, hook: Callable[[], None] | None) -> None:
        self.pump.on_drain = hook

    @property
    def unusable_updates(self) -> int:
        """Updates the model refused with an exception (noted in the event log, then skipped)."""
        return self.pump.unusable_updates

    @property
    def loading(self) -> int:
        """Updates received but not applied yet (a big first listing being read in)."""
        return self.pump.loading

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the app runs in, once mounted (for callbacks from other threads)."""
        return self.pump.loop

    def key_recent(self) -> bool:
        """A key was pressed less than KEY_QUIET ago (its effect may still be on its way)."""
        return self.pump.key_recent()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.pump.key_pressed()
        await super().on_event(event)

    def flush(self) -> None:
        """Apply everything the sources delivered now, then repaint once (unless frozen)."""
        self.pump.flush()

    # -- the batched repaint --------------------------------------------------------------
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
        with self.batch_update():
            if self._rows_dirty or self.pump.changed or full:
                self._update_rows(table, full)
            table.stale = self.stale_sources() != ()
            self._repaint_panels(main, full)
            if isinstance(self.screen, NodeDetailScreen):
                self.screen.refresh_from_model()
        self.repaints += 1
        if self.on_repaint is not None:
            self.on_repaint()

    def _update_rows(self, table: NodeTable, full: bool) -> None:
        changed = self.pump.take_changed()
        rows = self.presenter.rows(table.rows, table.row_index, changed, full)
        view = self.view
        table.set_rows(rows, None if full else changed, same_order=view.same_order, index=view.shown_index)
        self._rows_dirty = False

    def _repaint_panels(self, main: MainScreen, full: bool) -> None:
        panels = self.presenter.panels(
            shown=len(main.table.rows), frozen=self.frozen, loading=self.pump.loading, full=full
        )
        main.query_one("#header", DashHeader).show(panels.header)
        if panels.channels is not None:
            main.query_one("#channels", ChannelBar).show(*panels.channels)
        if panels.locks is not None:
            main.query_one("#locks", LockPanel).show(panels.locks, panels.now)
        if panels.activity:
            main.query_one("#events", EventLog).add(panels.activity)

    def _clock_tick(self) -> None:
        """Once a second: ages in the lock panel and header ("last ok 12s ago")."""
        self._ticks += 1
        if self.pump.settled and self._ticks % 10 == 0:
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
            held = self.presenter.held_locks()
            if held is not None:
                main.query_one("#locks", LockPanel).show(held, now)
            if self.stale_sources():
                self._repaint_panels(main, False)

    def stale_sources(self) -> tuple[str, ...]:
        return self.presenter.stale_sources()

    # -- view state -----------------------------------------------------------------------
    @property
    def view(self) -> RowView:
        return self.presenter.view

    @property
    def query_text(self) -> str:  # not `query`: that is Textual's DOM query, which its actions call
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
        self.push_screen(NodeDetailScreen(self.presenter.node_detail, machine_id, self.history))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = "coreroll keys" + (" [R] read-only" if self.read_only else "")
        if self.keymap_sources:
            title += " (remapped by " + " over ".join(self.keymap_sources) + ")"
        self.push_screen(HelpScreen(self.help_rows(), title=title))

    def action_command_palette(self) -> None:
        """The palette acts on the main screen: it opens there only (not over a dialog)."""
        if isinstance(self.screen, MainScreen):
            super().action_command_palette()

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(key, description, binding id) for every binding, as currently mapped."""
        classes = (type(self.main_screen), type(self), NodeTable, LockPanel)
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
