"""What the palette's commands do (tui.palette lists them): run a key's action, go to a node, and
the saved filters (tui.saved_filters) — apply, save the current filter under a name, forget.

Each takes the app. A key's action runs exactly as its key would (`App.run_action`, so read-only
mode refuses a mutating one as it refuses the key). Saving asks with dialogs, so it runs in a
worker. Problems with filters.toml are told in a notification naming the file and line; the
dashboard never stops over it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from coreroll.watch.query import QueryError
from tui.interventions import Host
from tui.keymap import DashAction
from tui.saved_filters import FilterStore, SavedFilter
from tui.screens.main import MainScreen
from tui.user_config import ConfigError
from widgets.dialogs import ConfirmDialog, TextDialog


class PaletteHost(Host, Protocol):
    """What the palette uses of the app (`tui.app.DashApp`, which lists the palette's providers:
    naming its class here would close an import circle)."""

    filter_store: FilterStore
    keymap: dict[str, str]  # binding id -> keys, as remapped
    theme: str

    @property
    def query_text(self) -> str: ...
    @property
    def main_screen(self) -> MainScreen: ...
    def set_query(self, text: str) -> None: ...
    def push_screen(self, screen: Screen[Any]) -> Any: ...
    def run_worker(self, work: Coroutine[Any, Any, Any], *, group: str, description: str) -> Any: ...
    async def run_action(self, action: str, default_namespace: DOMNode | None = None) -> bool: ...
    def get_key_display(self, binding: Binding) -> str: ...
    def search_themes(self) -> None: ...


async def run_dash_action(app: PaletteHost, action: DashAction) -> None:
    """What `action`'s key does, on the screen the key belongs to."""
    target = None if action.value.app_wide else app.main_screen  # None: the app
    await app.run_action(action.textual_action, target)


def go_to_node(app: PaletteHost, machine_id: str) -> None:
    """Put the table's cursor on the node (clearing a filter that hides it) and focus the table."""
    row = app.model.get(machine_id)
    if row is None:
        app.notify(f"{machine_id} is no longer known to etcd or the server", severity="warning")
        return
    table = app.main_screen.table
    if not table.move_cursor_to_key(machine_id) and app.query_text:
        hidden_by = app.query_text
        app.set_query("")
        app.notify(f"filter {hidden_by!r} cleared: it hid {row.display_name}")
    if not table.move_cursor_to_key(machine_id):
        app.notify(f"{row.display_name} is not in the table yet", severity="warning")
        return
    table.focus()


_REPORTED: WeakKeyDictionary[FilterStore, tuple[str, ...]] = WeakKeyDictionary()


def saved_filters(app: PaletteHost) -> list[SavedFilter]:
    """The saved filters, read again (the operator may have edited the file); a problem with the
    file is notified once (until it changes), and the palette goes on without what is wrong."""
    store = app.filter_store
    try:
        loaded = store.load()
        problems = tuple(loaded.problems)
    except ConfigError as exc:
        loaded, problems = None, (str(exc),)
    if problems and _REPORTED.get(store) != problems:
        app.notify("saved filters: " + "\n".join(problems), severity="error", timeout=10)
    _REPORTED[store] = problems
    return loaded.filters if loaded is not None else []


def apply_filter(app: PaletteHost, saved: SavedFilter) -> None:
    try:
        app.set_query(saved.query)
    except QueryError as exc:  # checked when loaded; the model's stale holders may still refuse it
        app.notify(f"saved filter {saved.name!r}: {exc}", severity="error")
        return
    app.notify(f"filter {saved.name!r}: {saved.query}", timeout=3)


def save_filter(app: PaletteHost) -> None:
    app.run_worker(_save_filter(app), group="palette", description="save filter")


async def _save_filter(app: PaletteHost) -> None:
    query = app.query_text
    if not query:
        app.notify("no filter to save: type one with /", severity="warning")
        return
    name = await app.push_screen_wait(
        TextDialog("save the filter", f"{query}\n\nsave it as (listed in the palette as filter: <name>):")
    )
    if name is None:
        return
    store = app.filter_store
    try:
        known = {saved.name for saved in store.load().filters}
        if name in known and not await app.push_screen_wait(
            ConfirmDialog("replace a saved filter", f"{name!r} exists: replace it with {query!r}?", "Replace")
        ):
            return
        store.save(name, query)
    except (ConfigError, QueryError, OSError) as exc:
        app.notify(f"filter not saved: {exc}", severity="error", timeout=10)
        return
    app.notify(f"saved filter {name!r} in {store.path}")


def forget_filter(app: PaletteHost, saved: SavedFilter) -> None:
    app.run_worker(_forget_filter(app, saved), group="palette", description="forget filter")


async def _forget_filter(app: PaletteHost, saved: SavedFilter) -> None:
    if not await app.push_screen_wait(
        ConfirmDialog("forget a saved filter", f"forget {saved.name!r} ({saved.query})?", "Forget")
    ):
        return
    try:
        app.filter_store.forget(saved.name)
    except (ConfigError, OSError) as exc:
        app.notify(f"filter not forgotten: {exc}", severity="error", timeout=10)
        return
    app.notify(f"forgot saved filter {saved.name!r}")
