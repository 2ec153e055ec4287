"""Every key of the dashboard, defined once: the `DashAction` enum.

Each member says its binding id, default key, key-bar label ("" = not in the key bar), the line
`?` shows for it, and whether it changes anything (`mutating`). Everything else is derived from it:

- the Textual bindings (`MAIN_BINDINGS` on the main screen, `APP_BINDINGS` on the app), each with
  the member's id, so users can remap it in keys.toml or `COREROLL_KEYMAP="check=C,freeze=F"`
  (read and checked by `tui.keymap_config`, applied with `App.set_keymap`);
- the command palette (tui.palette lists every member by its description);
- the key bar (`widgets.key_bar` shows the screen's active bindings that have a label);
- the `?` screen (`help_rows`: every binding of the app, the main screen and the node table, with
  the keymap applied, described by the member);
- the read-only set (`MUTATING`): a mutating member's binding runs the action
  `intervene('<id>')`, which `action_allowed` refuses in read-only mode, so Textual hides its key.

A mutating key is an intervention: the main screen turns `intervene('<id>')` into an
`InterventionRequested(action, selection)` message (tui/messages.py) for the app, and the app runs
the member's handler from tui/interventions.py. A non-mutating key runs `action_<id>` on the main
screen (or on the app, for `app_wide` members).

Adding a mutating key: add a member here with `mutating=True`, and write its handler in
tui/interventions.py, decorated `@handles(DashAction.NEW)` (it gets the app and the `Selection`;
it asks with dialogs, calls the action layer through `call_action`, and the outcome is notified
and logged). Nothing else changes; tests/tui/test_actions.py checks that every mutating member
has a handler, every other member its `action_<id>` method, and that no other file in tui/ or
widgets/ names a mutating key. (Then add a row to the key table in README.md.)

Not in the enum: the movement keys of the node table (`table.*`, widgets/node_table.py) and of
the other lists (`list.*`, widgets/list_keys.py), listed in `?` from `NAVIGATION_HELP`, and the
close / confirm keys of the detail screen (`DETAIL_BINDINGS`), the `?` screen and the dialogs,
which only act inside those screens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from textual.binding import Binding
from textual.dom import DOMNode

from widgets.list_keys import LIST_HELP

INTERVENE = "intervene"
"""The Textual action every mutating key runs, with the member's id as its one parameter."""


@dataclass(frozen=True)
class KeySpec:
    id: str  # the binding id: what COREROLL_KEYMAP remaps, shown in `?`
    key: str  # the default key(s), Textual names, comma-separated
    description: str  # the line in `?`
    label: str = ""  # the key bar's text; "" keeps the key out of the key bar
    mutating: bool = False  # changes etcd or the server: hidden and refused in read-only mode
    app_wide: bool = False  # bound on the app (works on every screen), else on the main screen


class DashAction(Enum):
    """The dashboard's keys, in the order the key bar and `?` list them."""

    CHECK = KeySpec(
        "check", "c", "check for an update now (selected or marked nodes)", "Check", mutating=True
    )
    SWITCH_CHANNEL = KeySpec(
        "switch_channel",
        "s",
        "switch channel of the selected or marked nodes (picker)",
        "Chan",
        mutating=True,
    )
    UNLOCK = KeySpec(
        "unlock",
        "u",
        "release the selected holder's / node's reboot lock (confirms)",
        "Unlock",
        mutating=True,
    )
    SET_MAX = KeySpec(
        "set_max", "m", "set the selected lock group's max (0 stops reboots)", "Max", mutating=True
    )
    PAUSE = KeySpec(
        "pause", "p", "pause / resume the selected node's server group (confirms)", "Pause", mutating=True
    )
    MARK = KeySpec("mark", "space", "mark / unmark the row under the cursor")
    FILTER = KeySpec(
        "filter", "slash", "filter: text, or channel:beta status:error lock:held online:no", "Filter"
    )
    SORT = KeySpec("sort", "o", "sort by the next column")
    REVERSE = KeySpec("reverse", "O", "reverse the sort order")
    DETAIL = KeySpec("detail", "enter", "node detail: partitions, status, history, commands")
    FOCUS_LOG = KeySpec("focus_log", "l", "focus the event log")
    FOCUS_LOCKS = KeySpec("focus_locks", "r", "focus the reboot-lock panel (select a holder for u / m)")
    FOCUS_TABLE = KeySpec("focus_table", "t", "focus the node table")
    BACK = KeySpec("back", "escape", "close filter, clear marks, then clear the filter")
    FREEZE = KeySpec("freeze", "f", "freeze the display; data keeps flowing underneath", "Freeze")
    COMMAND_PALETTE = KeySpec(
        "command_palette",
        "ctrl+p,colon",
        "palette: actions by name, go to node, saved filters, theme",
        "Palette",
        app_wide=True,
    )
    HELP = KeySpec("help", "question_mark", "every key, as mapped now (this list)", "Help", app_wide=True)
    QUIT = KeySpec("quit", "q", "quit", "Quit", app_wide=True)

    @property
    def id(self) -> str:
        return self.value.id

    @property
    def key(self) -> str:
        return self.value.key

    @property
    def description(self) -> str:
        return self.value.description

    @property
    def mutating(self) -> bool:
        return self.value.mutating

    @property
    def textual_action(self) -> str:
        """What the binding runs: `intervene('<id>')` for a mutating key, else `<id>`."""
        return f"{INTERVENE}({self.id!r})" if self.mutating else self.id

    def binding(self) -> Binding:
        spec = self.value
        return Binding(
            spec.key, self.textual_action, spec.label or spec.id, show=bool(spec.label), id=spec.id
        )

    @classmethod
    def by_id(cls, binding_id: str) -> DashAction | None:
        return _BY_ID.get(binding_id)


_BY_ID: dict[str, DashAction] = {action.id: action for action in DashAction}

MAIN_BINDINGS: list[Binding] = [a.binding() for a in DashAction if not a.value.app_wide]
APP_BINDINGS: list[Binding] = [a.binding() for a in DashAction if a.value.app_wide]

DETAIL_BINDINGS: list[Binding] = [
    Binding("escape,enter", "close", "Back", id="detail.close"),
]

MUTATING = frozenset(a.id for a in DashAction if a.mutating)
"""Binding ids of the keys that change etcd or the server: hidden and refused in read-only mode."""

NAVIGATION_HELP: dict[str, str] = {
    "table.up": "cursor up",
    "table.down": "cursor down",
    "table.pageup": "page up",
    "table.pagedown": "page down",
    "table.home": "first row",
    "table.end": "last row",
    **LIST_HELP,
}
"""Lines for `?` for the movement keys of the node table (widgets.node_table) and of every other
list (widgets.list_keys), by binding id."""


def action_allowed(action: str, parameters: tuple[object, ...], read_only: bool) -> bool:
    """`check_action` for every screen: in read-only mode a mutating key's action is refused (and
    Textual hides the key from the key bar)."""
    if action != INTERVENE:
        return True
    member = DashAction.by_id(str(parameters[0])) if parameters else None
    return not (read_only and (member is None or member.mutating))


def declared_bindings(cls: type[DOMNode]) -> list[Binding]:
    """Every binding `cls` declares, its own and inherited, merged as Textual merges them (a
    subclass's bindings for a key replace its bases'); read from the public `BINDINGS`."""
    by_key: dict[str, list[Binding]] = {}
    for base in reversed(cls.__mro__):
        declared: dict[str, list[Binding]] = {}
        for binding in Binding.make_bindings(base.__dict__.get("BINDINGS", ())):
            declared.setdefault(binding.key, []).append(binding)
        by_key.update(declared)
    return [binding for bindings in by_key.values() for binding in bindings]


def help_rows(
    classes: Iterable[type[DOMNode]],
    keymap: dict[str, str],
    read_only: bool,
    key_display: Callable[[Binding], str],
) -> list[tuple[str, str, str]]:
    """(key, description, binding id) for every binding of `classes` (the main screen, the node
    table, the app), with `keymap` applied as Textual applies it to each of them (a remapped
    binding has the keymap's keys instead of its own, and takes them from any other binding of
    the same class); mutating keys are marked hidden in read-only mode. Feeds the `?` screen."""
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for cls in classes:
        bindings = declared_bindings(cls)
        remapped = {
            binding.id: [binding.with_key(key.strip()) for key in keymap[binding.id].split(",")]
            for binding in bindings
            if binding.id is not None and keymap.get(binding.id)
        }
        taken = {key_display(binding) for keys in remapped.values() for binding in keys}
        for binding in bindings:
            if binding.id in remapped:
                shown = remapped[binding.id]
            elif key_display(binding) in taken:
                continue
            else:
                shown = [binding]
            for bound in shown:
                key = key_display(bound)
                if (bound.id or bound.action, key) in seen or bound.action.endswith(".copy_text"):
                    continue
                seen.add((bound.id or bound.action, key))
                rows.append((key, _help_line(bound, read_only), bound.id or ""))
    return rows


def _help_line(binding: Binding, read_only: bool) -> str:
    member = DashAction.by_id(binding.id or "")
    if member is None:
        return NAVIGATION_HELP.get(binding.id or "", binding.description or binding.action)
    if read_only and member.mutating:
        return member.description + "  (hidden: read-only)"
    return member.description
