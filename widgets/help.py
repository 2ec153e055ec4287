"""`HelpScreen`: every key the dashboard answers to, read from the live bindings.

`HelpScreen(rows, read_only)` where `rows` is a list of `(key, description, binding_id)`; the app
builds it from its bindings (after any keymap remapping), so the list never drifts from what the
keys really do. Mutating keys are listed as "hidden: read-only" in read-only mode.
`escape`, `q` or `?` close it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

from widgets.list_keys import NavScroll


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > NavScroll {
        width: 104; max-width: 100%; height: 90%;
        border: thick $accent; background: $panel; padding: 0 1;
    }
    HelpScreen Static { width: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close")
    ]

    def __init__(self, rows: Sequence[tuple[str, str, str]], title: str = "coreroll keys") -> None:
        super().__init__()
        self._rows = list(rows)
        self._title = title

    def compose(self) -> ComposeResult:
        table = Table(title=self._title, box=None, show_header=True, pad_edge=False, expand=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("does")
        table.add_column("binding id", style="dim", no_wrap=True)
        for key, description, binding_id in self._rows:
            table.add_row(key, description, binding_id)
        with NavScroll():
            yield Static(table)

    def on_mount(self) -> None:
        self.query_one(NavScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
