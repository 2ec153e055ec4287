"""Every key of the dashboard, as Textual Bindings with ids (so users can remap them).

Remap with `COREROLL_KEYMAP="check=C,freeze=F"` (binding id = key[,key]), applied with
`App.set_keymap`. `MUTATING` are the binding ids hidden in read-only mode (`check_action` returns
False for their actions, so they vanish from the footer and from `?`).

| key       | id              | does                                                      |
|-----------|-----------------|-----------------------------------------------------------|
| c         | check           | ask the selected / marked nodes to check for an update now |
| s         | switch_channel  | switch the selected / marked nodes' channel (picker)      |
| u         | unlock          | release the selected holder's (or node's) reboot lock     |
| m         | set_max         | set the selected lock group's max                         |
| p         | pause           | pause / resume the selected node's server group           |
| space     | mark            | mark / unmark the row under the cursor                    |
| /         | filter          | filter: text or `channel:beta status:error lock:held`     |
| o / O     | sort / reverse  | sort by the next column / reverse the order               |
| enter     | detail          | node detail (partitions, status, history, commands)       |
| l         | focus_log       | focus the event log                                       |
| r         | focus_locks     | focus the reboot-lock panel                               |
| t         | focus_table     | focus the node table                                      |
| escape    | back            | close filter / clear marks / clear filter                 |
| f         | freeze          | freeze the screen (data keeps flowing underneath)         |
| ?         | help            | list every key                                            |
| q         | quit            | quit                                                      |
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from textual.binding import Binding

from tui.textual_compat import bindings_by_key

MAIN_BINDINGS: list[Binding] = [
    Binding("c", "check", "Check", id="check"),
    Binding("s", "switch_channel", "Chan", id="switch_channel"),
    Binding("u", "unlock", "Unlock", id="unlock"),
    Binding("m", "set_max", "Max", id="set_max"),
    Binding("p", "pause", "Pause", id="pause"),
    Binding("space", "mark", "Mark", show=False, id="mark"),
    Binding("slash", "filter", "Filter", id="filter"),
    Binding("o", "sort", "Sort", show=False, id="sort"),
    Binding("O", "reverse", "Reverse", show=False, id="reverse"),
    Binding("enter", "detail", "Detail", show=False, id="detail"),
    Binding("l", "focus_log", "Events", show=False, id="focus_log"),
    Binding("r", "focus_locks", "Locks", show=False, id="focus_locks"),
    Binding("t", "focus_table", "Table", show=False, id="focus_table"),
    Binding("escape", "back", "Back", show=False, id="back"),
    Binding("f", "freeze", "Freeze", id="freeze"),
]

APP_BINDINGS: list[Binding] = [
    Binding("question_mark", "help", "Help", id="help"),
    Binding("q", "quit", "Quit", id="quit"),
]

DETAIL_BINDINGS: list[Binding] = [
    Binding("escape,enter", "close", "Back", id="detail.close"),
]

HELP_TEXT: dict[str, str] = {
    "check": "check for an update now (selected or marked nodes)",
    "switch_channel": "switch channel of the selected or marked nodes (picker)",
    "unlock": "release the selected holder's / node's reboot lock (confirms)",
    "set_max": "set the selected lock group's max (0 stops reboots)",
    "pause": "pause / resume the selected node's server group (confirms)",
    "mark": "mark / unmark the row under the cursor",
    "filter": "filter: text, or channel:beta status:error lock:held online:no",
    "sort": "sort by the next column",
    "reverse": "reverse the sort order",
    "detail": "node detail: partitions, status, history, commands",
    "focus_log": "focus the event log",
    "focus_locks": "focus the reboot-lock panel (select a holder for u / m)",
    "focus_table": "focus the node table",
    "back": "close filter, clear marks, then clear the filter",
    "freeze": "freeze the display; data keeps flowing underneath",
    "help": "this list",
    "quit": "quit",
    "table.up": "cursor up",
    "table.down": "cursor down",
    "table.pageup": "page up",
    "table.pagedown": "page down",
    "table.home": "first row",
    "table.end": "last row",
}
"""Long descriptions for `?`, by binding id."""

MUTATING = frozenset({"check", "switch_channel", "unlock", "set_max", "pause"})
"""Actions (same names as the binding ids) that change etcd or the server: hidden in read-only."""


def binding_rows(
    nodes: Iterable[Any], read_only: bool, key_display: Callable[[Binding], str]
) -> list[tuple[str, str, str]]:
    """(key, description, binding id) for every binding of `nodes` (app, screen, widgets), as
    currently mapped; mutating ones are marked hidden in read-only mode. Feeds the `?` screen."""
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for node in nodes:
        for bindings in bindings_by_key(node):
            for binding in bindings:
                if binding.id is None and binding.action in ("app.copy_text", "screen.copy_text"):
                    continue
                key = key_display(binding)
                if (binding.id or binding.action, key) in seen:
                    continue
                seen.add((binding.id or binding.action, key))
                name = binding.action.split("(")[0]
                description = HELP_TEXT.get(binding.id or "", binding.description or name)
                if read_only and name in MUTATING:
                    description += "  (hidden: read-only)"
                rows.append((key, description, binding.id or ""))
    return rows


def keymap_from_env(value: str | None = None) -> dict[str, str]:
    """Parse `id=key[,key];id=key` (or comma-separated pairs) from COREROLL_KEYMAP."""
    value = os.environ.get("COREROLL_KEYMAP", "") if value is None else value
    keymap: dict[str, str] = {}
    current: str | None = None
    for piece in value.replace(";", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if "=" in piece:
            current, _, key = piece.partition("=")
            current = current.strip()
            keymap[current] = key.strip()
        elif current is not None:  # "id=a,b": extra keys for the same binding
            keymap[current] += f",{piece}"
    return keymap
