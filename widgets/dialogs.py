"""Modal dialogs the dashboard asks questions with; keyboard only, no mouse needed.

- `ConfirmDialog(title, body, confirm_label="OK")` -> `bool`: Cancel has the focus when it opens
  (k9s's delete dialog does the same), so a stray Enter never does the destructive thing.
  `escape` and `n` cancel, `y` confirms.
- `ChoiceDialog(title, choices, current=None)` -> `str | None`: pick one of `choices` (the channel
  picker). Enter picks the highlighted one (j/k/g/G move, as in every list), escape cancels.
- `NumberDialog(title, body, value, minimum, maximum=None)` -> `int | None`: an integer input (the
  lock max); refuses anything but an integer within the bounds, saying why, and keeps the dialog open.
- `TextDialog(title, body, value="")` -> `str | None`: one line of text (a saved filter's name);
  blank input is refused, saying so.

Each is a `ModalScreen`; push it with `app.push_screen(dialog, callback)` or
`await app.push_screen_wait(dialog)` from a worker. Titles, bodies and choices name things from etcd
and the server (groups, holders, channels): they are shown as plain text (no markup) with control
characters made visible (`shown()`); a choice still returns its raw value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from coreroll.textsafe import visible
from widgets.list_keys import NavOptionList


def shown(text: str) -> str:
    """`text` safe to show: line breaks kept (bodies have several lines), every other control
    character written out (see coreroll.textsafe.visible)."""
    return "\n".join(visible(line) for line in text.split("\n"))


ResultT = TypeVar("ResultT")

DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: auto;
    min-width: 40;
    max-width: 90%;
    height: auto;
    max-height: 90%;
    border: thick $accent;
    background: $panel;
    padding: 0 1;
}}
{name} .title {{
    text-style: bold;
    width: 100%;
    margin-bottom: 1;
}}
{name} .body {{
    width: auto;
    max-width: 76;
    margin-bottom: 1;
}}
{name} .error {{
    color: $error;
    height: auto;
}}
{name} Horizontal {{
    height: auto;
    width: auto;
    align-horizontal: right;
}}
{name} Button {{
    margin-left: 1;
    min-width: 10;
}}
"""


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no question; Cancel focused, so only a deliberate choice confirms."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="dialog.cancel"),
        Binding("y", "confirm", "Confirm", id="dialog.confirm"),
        Binding("left,right", "switch", "Switch button", show=False),
    ]

    def __init__(self, title: str, body: str, confirm_label: str = "OK") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), classes="title", markup=False)
            yield Label(shown(self._body), classes="body", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(self._confirm_label, id="confirm", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_switch(self) -> None:
        cancel = self.query_one("#cancel", Button)
        (self.query_one("#confirm", Button) if cancel.has_focus else cancel).focus()

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")


class ChoiceDialog(ModalScreen[str | None]):
    """Pick one value from a short list (a channel)."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="ChoiceDialog") + "ChoiceDialog OptionList { height: auto; max-height: 12; }"
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, choices: Sequence[str], current: str | None = None) -> None:
        super().__init__()
        self._title = title
        self._choices = list(choices)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), classes="title", markup=False)
            options = [
                Option(Text(visible(c) + ("  (current)" if c == self._current else "")), id=c)
                for c in self._choices
            ]
            yield NavOptionList(*options)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self._choices:
            options.highlighted = 0

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class LineDialog(ModalScreen[ResultT | None]):
    """A title, a body and one input line; Enter passes the line to `check`, whose ValueError is
    shown under it while the dialog stays open. Subclasses give the input and the check."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self._title = title
        self._body = body

    def make_input(self) -> Input:
        raise NotImplementedError

    def check(self, text: str) -> ResultT:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(shown(self._title), classes="title", markup=False)
            yield Label(shown(self._body), classes="body", markup=False)
            yield self.make_input()
            yield Label("", classes="error", id="error", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            value = self.check(event.value.strip())
        except ValueError as exc:
            self.query_one("#error", Label).update(str(exc))
            return
        self.dismiss(value)


class NumberDialog(LineDialog[int]):
    """Ask for one integer >= `minimum`; bad input is explained and the dialog stays open."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NumberDialog")

    def __init__(
        self, title: str, body: str, value: int | None = None, minimum: int = 0, maximum: int | None = None
    ) -> None:
        super().__init__(title, body)
        self._value = value
        self._minimum = minimum
        self._maximum = maximum

    def make_input(self) -> Input:
        return Input(value="" if self._value is None else str(self._value), type="integer", id="number")

    def check(self, text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
        if number < self._minimum:
            raise ValueError(f"must be at least {self._minimum}, got {number}")
        if self._maximum is not None and number > self._maximum:
            raise ValueError(f"must be at most {self._maximum}, got {number}")
        return number


class TextDialog(LineDialog[str]):
    """Ask for one line of text (a name); blank input is refused, saying so, and the dialog stays."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextDialog")

    def __init__(self, title: str, body: str, value: str = "", max_length: int = 200) -> None:
        super().__init__(title, body)
        self._value = value
        self._max_length = max_length

    def make_input(self) -> Input:
        return Input(value=self._value, max_length=self._max_length, id="text")

    def check(self, text: str) -> str:
        if not text:
            raise ValueError("type a name (Esc cancels)")
        return text
