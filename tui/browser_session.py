"""One browser session of `coreroll dash --serve`: the dashboard, read-only until signed in.

    COREROLL_BROWSER_SESSION='{"flags": {...}, "admin_token": "..."}' python -m tui.browser_session

textual-serve starts this once per websocket (see `tui.serve`), with the web driver on its stdin and
stdout. The settings come in the environment, never on the command line: the dashboard's flags as
`coreroll dash` parsed them, and the admin token (null when there is none, or with --read-only).
The session takes them out of its environment before anything else runs.

`BrowserDashApp` is `DashApp` started read-only, with `[browser: read-only]` in the header. With an
admin token it opens `tui.screens.sign_in.SignInScreen`: the right token (constant-time compare)
switches to a writing action layer holding that token, `[browser: admin]`; Esc, or three wrong
tokens, keep the session read-only (reload the page to try again). Audit records written from an
admin session say `via browser`. The token is kept in a `Secret`, whose repr never shows it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
from collections.abc import MutableMapping
from typing import Any

from coreroll.audit import current_user
from tui.app import DashApp
from tui.run import build_app
from tui.screens.sign_in import SignInScreen

SESSION_ENV = "COREROLL_BROWSER_SESSION"
READ_ONLY_LABEL = "browser: read-only"
ADMIN_LABEL = "browser: admin"
SERVER_CHECK_EVERY = 2.0  # seconds between checks that the server is still there
NOT_FLAGS = ("handler", "serve", "token")  # what a session never takes from the server's arguments


class Secret:
    """A token that never shows in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, typed: str) -> bool:
        """Constant-time comparison (of digests, so not even the length shows); never raises."""
        try:
            given = hashlib.sha256(typed.encode("utf-8", "surrogatepass")).digest()
            return hmac.compare_digest(
                given, hashlib.sha256(self._value.encode("utf-8", "surrogatepass")).digest()
            )
        except Exception:
            return False

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def encode_settings(args: argparse.Namespace, admin_token: str | None) -> str:
    """The sessions' settings: the dashboard's flags (not --serve, not --token) and the admin token."""
    flags = {k: v for k, v in vars(args).items() if k not in NOT_FLAGS and _jsonable(v)}
    return json.dumps({"flags": flags, "admin_token": admin_token})


def take_settings(environ: MutableMapping[str, str]) -> tuple[argparse.Namespace, Secret | None]:
    """Remove the settings from `environ`; the flags for a read-only dashboard and the admin token."""
    raw = environ.pop(SESSION_ENV, None)
    if raw is None:
        raise ValueError(f"no {SESSION_ENV}: a browser session is started by `coreroll dash --serve`")
    try:
        data = json.loads(raw)
        flags = dict(data["flags"])
        token = data.get("admin_token")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{SESSION_ENV} is not the settings `coreroll dash --serve` writes: {exc}") from None
    args = argparse.Namespace(**flags)
    operator_read_only = bool(getattr(args, "read_only", False))
    args.read_only, args.token, args.serve = True, None, None  # every session starts watching only
    secret = Secret(token) if isinstance(token, str) and token and not operator_read_only else None
    return args, secret


class BrowserDashApp(DashApp):
    """The dashboard of one browser session (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin_token: Secret | None = None
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
        current = self.actions
        if current is not None:
            from coreroll.watch.actions import Actions

            self.actions = Actions(
                getattr(current, "etcd_config", None),
                getattr(current, "server_url", None),
                self.admin_token.reveal(),
                False,
                by=f"{current_user()} via browser",
            )
        self.read_only = False
        self.presenter.read_only = False
        self.presenter.session = ADMIN_LABEL
        self.refresh_bindings()
        self.repaint()


def session_app(environ: MutableMapping[str, str]) -> tuple[BrowserDashApp, bool]:
    """The session's app (read-only until signed in) and whether the mouse is on."""
    args, secret = take_settings(environ)
    app = build_app(args, app_class=BrowserDashApp)
    assert isinstance(app, BrowserDashApp)
    app.admin_token = secret
    return app, bool(getattr(args, "mouse", False))


def main() -> int:
    try:
        app, mouse = session_app(os.environ)
    except (ValueError, OSError) as exc:
        print(f"coreroll browser session: {exc}", file=sys.stderr)
        return 1
    return int(app.run(mouse=mouse) or 0)


if __name__ == "__main__":
    sys.exit(main())
