"""`SignInScreen`: a browser session's first screen, asking for the admin token.

    app.push_screen(SignInScreen(secret.matches), on_result)   # True: the token matched

Enter checks the token with `check` (constant-time, in `coreroll.secret.Secret`); a wrong one
is refused with the tries left, and after `attempts` wrong ones the screen closes read-only. Esc
closes it read-only at once. The field is a password field and is cleared after every try.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class TokenInput(Input):
    """A password field whose Enter posts no copy of the text: `Input.Submitted` carries the value,
    and a message can end up in a log or in a traceback's local variables."""

    class Entered(Message):
        """Enter was pressed; read the field itself."""

    async def action_submit(self) -> None:
        self.post_message(self.Entered())


class SignInScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    SignInScreen { align: center middle; }
    SignInScreen > #sign-in { width: 64; height: auto; padding: 1 2; border: thick $accent; background: $panel; }
    SignInScreen #sign-in-title { text-style: bold; margin-bottom: 1; }
    SignInScreen #sign-in-help { color: $text-muted; margin-top: 1; }
    SignInScreen #sign-in-message { color: $error; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "read_only", "watch read-only")]

    def __init__(self, check: Callable[[str], bool], attempts: int = 3) -> None:
        super().__init__()
        self.check = check
        self.attempts = attempts

    def compose(self) -> ComposeResult:
        with Vertical(id="sign-in"):
            yield Static("coreroll in a browser", id="sign-in-title")
            yield Static("Admin token (the update server's, as for `coreroll dash --token`):")
            yield TokenInput(password=True, id="token")
            yield Static("Enter: sign in as admin    Esc: watch read-only", id="sign-in-help")
            yield Static("", id="sign-in-message")

    def on_mount(self) -> None:
        self.query_one(TokenInput).focus()

    @on(TokenInput.Entered)
    def _entered(self, event: TokenInput.Entered) -> None:
        event.stop()
        field = self.query_one(TokenInput)
        if not field.value:
            return
        matched = self.check(field.value)
        field.value = ""
        if matched:
            self.dismiss(True)
            return
        self.attempts -= 1
        if self.attempts <= 0:
            self.dismiss(False)
            return
        tries = "1 try" if self.attempts == 1 else f"{self.attempts} tries"
        self.query_one("#sign-in-message", Static).update(f"token refused: {tries} left")

    def action_read_only(self) -> None:
        self.query_one(TokenInput).value = ""
        self.dismiss(False)
