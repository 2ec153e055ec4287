"""The movement keys of every list that is not the node table: `j`/`k`/`g`/`G` as well as the arrows,
Home/End and the page keys, as in the node table (widgets/node_table.py).

Each binding has a `list.*` id, the same in every list, so one entry in the key map file (or
COREROLL_KEYMAP) moves the keys of all of them; `LIST_HELP` is each id's line in `?`.

- `NavOptionList`: an OptionList (the lock panel, the channel picker) whose highlight moves;
- `SCROLL_BINDINGS`: for a scrolling view (the event log, the `?` screen, the node detail);
  `NavScroll` is a VerticalScroll with them.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import OptionList

LIST_HELP: dict[str, str] = {
    "list.up": "lists (lock panel, event log, pickers, ?): up",
    "list.down": "lists: down",
    "list.pageup": "lists: page up",
    "list.pagedown": "lists: page down",
    "list.home": "lists: first line",
    "list.end": "lists: last line",
}

# (id, keys, OptionList action, scrolling action)
_MOVES = (
    ("list.up", "up,k", "cursor_up", "scroll_up"),
    ("list.down", "down,j", "cursor_down", "scroll_down"),
    ("list.pageup", "pageup", "page_up", "page_up"),
    ("list.pagedown", "pagedown", "page_down", "page_down"),
    ("list.home", "home,g", "first", "scroll_home"),
    ("list.end", "end,G", "last", "scroll_end"),
)

OPTION_LIST_BINDINGS: list[BindingType] = [
    Binding(keys, action, LIST_HELP[ident], show=False, id=ident) for ident, keys, action, _ in _MOVES
]
SCROLL_BINDINGS: list[BindingType] = [
    Binding(keys, action, LIST_HELP[ident], show=False, id=ident) for ident, keys, _, action in _MOVES
]


class NavOptionList(OptionList):
    """An OptionList that also answers to j/k/g/G."""

    BINDINGS: ClassVar[list[BindingType]] = list(OPTION_LIST_BINDINGS)


class NavScroll(VerticalScroll):
    """A VerticalScroll that also answers to j/k/g/G."""

    BINDINGS: ClassVar[list[BindingType]] = list(SCROLL_BINDINGS)
