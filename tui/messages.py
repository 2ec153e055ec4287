"""What the screens ask of the app, as typed Textual messages.

The main screen owns the widgets and knows what is selected; the app owns the model, the view
(filter, sort), the display state and the action layer. A key on the screen becomes one of these
messages, posted to the app (`app.post_message`), and the app's handlers (`DashApp`, the section
"requests from the screens") act on it. So the screens never call the app, and never import it.

- `FilterRequested(text)`: filter the table (`text` already parses as a query).
- `SortRequested(reverse_only)`: sort by the next column, or only reverse the order.
- `FreezeRequested()`: freeze the display, or make it live again.
- `DetailRequested(machine_id)`: open the node detail.
- `InterventionRequested(action, selection)`: run a mutating key's handler (tui/interventions.py)
  on what was selected when the key was pressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from textual.message import Message

from coreroll.watch.views import NodeRow
from tui.keymap import DashAction


class DashView(Protocol):
    """What the main screen reads of its app (`tui.app.DashApp`); it asks for changes with the
    messages below."""

    @property
    def query_text(self) -> str: ...

    def key_recent(self) -> bool: ...


@dataclass(frozen=True)
class Selection:
    """What an intervention acts on, read from the main screen when its key was pressed."""

    nodes: tuple[str, ...] = ()  # the marked rows still shown, else the row under the cursor
    cursor: NodeRow | None = None  # the row under the cursor
    lock_group: str | None = None  # group the lock keys act on (the lock panel's, else the row's)
    lock_holder: str | None = None  # the holder they act on (the panel's, else the row if it holds one)
    locks_focused: bool = False  # the lock panel had the focus (its selection, not the row's)
    # where that group's semaphore lives: "v2" | "v3" | "airlock"; None: not known (a row's own
    # lock group), the action layer resolves it as --etcd-api says
    lock_api: str | None = None


class FilterRequested(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SortRequested(Message):
    def __init__(self, reverse_only: bool) -> None:
        super().__init__()
        self.reverse_only = reverse_only


class FreezeRequested(Message):
    pass


class DetailRequested(Message):
    def __init__(self, machine_id: str) -> None:
        super().__init__()
        self.machine_id = machine_id


class InterventionRequested(Message):
    def __init__(self, action: DashAction, selection: Selection) -> None:
        super().__init__()
        self.action = action
        self.selection = selection
