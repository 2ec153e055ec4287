"""One browser session of `coreroll dash --serve`: the dashboard, read-only until signed in.

`coreroll.commands.dashboard.session` is the process textual-serve starts once per websocket (see
`tui.serve`), with the web driver on its stdin and stdout; it builds the session's read-only
`DashboardSetup` and calls `session_app(setup, admin_token)` here.

`BrowserDashApp` is `DashApp` started read-only, with `[browser: read-only]` in the header. With an
admin token it opens `tui.screens.sign_in.SignInScreen`: the right token (constant-time compare,
`coreroll.secret.Secret`) switches to the writing action layer the setup hands out for it
(`setup.admin_actions`, its audit records say `via browser`), `[browser: admin]`; Esc, or three
wrong tokens, keep the session read-only (reload the page to try again).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from coreroll.secret import Secret
from coreroll.watch.setup import DashboardSetup
from tui.app import DashApp
from tui.run import build_app
from tui.screens.sign_in import SignInScreen

READ_ONLY_LABEL = "browser: read-only"
ADMIN_LABEL = "browser: admin"
SERVER_CHECK_EVERY = 2.0  # seconds between checks that the server is still there


class BrowserDashApp(DashApp):
    """The dashboard of one browser session (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin_token: Secret | None = None
        self.admin_actions: Callable[[str], Any] | None = None  # token -> a writing action layer
        self.watch_tty = False  # stdin is textual-serve's pipe: never a TTY, and no SIGHUP
        self.presenter.session = READ_ONLY_LABEL
        self.server_pid = os.getppid()  # `coreroll dash --serve` (the command execs us)

    def on_ready(self) -> None:
        # a server that died without closing our websocket (SIGKILL, OOM) leaves no one to read our
        # output or stop us: leave with it rather than run on, connected to etcd
        self.set_interval(SERVER_CHECK_EVERY, self._check_server)
        # Ready comes after DashApp.on_mount pushed the main screen (Textual calls every class's
        # on_mount itself), so the form opens on top of it
        if self.admin_token is not None:
            self.push_screen(SignInScreen(self.admin_token.matches), self._signed_in)

    def _check_server(self) -> None:
        if os.getppid() != self.server_pid:
            self.exit(0)

    def _signed_in(self, admin: bool | None) -> None:
        if admin:
            self.grant_admin()
            self.notify("signed in: this browser session can change the fleet", timeout=4)
        else:
            self.notify("read-only session: reload the page to sign in", timeout=4)

    def grant_admin(self) -> None:
        """The admin token was given: write through an action layer that holds it."""
        if self.admin_token is None:
            return
        if self.actions is not None and self.admin_actions is not None:
            self.actions = self.admin_actions(self.admin_token.reveal())
        self.read_only = False
        self.presenter.read_only = False
        self.presenter.session = ADMIN_LABEL
        self.refresh_bindings()
        self.repaint()


def session_app(setup: DashboardSetup, admin_token: Secret | None) -> BrowserDashApp:
    """The session's app, read-only until signed in with `admin_token` (None: never)."""
    app = build_app(setup, app_class=BrowserDashApp)
    app.admin_token = admin_token
    app.admin_actions = setup.admin_actions
    return app
