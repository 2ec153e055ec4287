"""`coreroll dash --serve`'s sessions: their settings, and the process textual-serve starts for each.

    COREROLL_BROWSER_SESSION='{"flags": {...}, "admin_token": "..."}' python -m coreroll.commands.dashboard.session

The serving process (`serve_setup(args)`) checks the flags once; once serving starts
(`ServeSetup.prepare_environment`) the sessions' settings go into its environment (inherited by
every session, which only the same user can read) and out go what no session may inherit (the
token variable, Textual's log, which would record each key); never on a command line (`ps` shows
those to every user) nor in a URL. Each session takes the
settings out of its environment before anything else runs, builds a read-only dashboard
(`wiring.dashboard_setup`) whose writing action layer, once the admin token is given in the
sign-in form, signs its audit records `user@host via browser`, and runs `tui.browser_session`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import MutableMapping

from coreroll.audit import current_user
from coreroll.commands.dashboard.ui import UIUnavailable, ui_module
from coreroll.commands.dashboard.wiring import admin_token, dashboard_setup
from coreroll.commands.lock import resolve
from coreroll.secret import Secret
from coreroll.watch.setup import DashboardSetup, ServeSetup

SESSION_ENV = "COREROLL_BROWSER_SESSION"
SESSION_MODULE = "coreroll.commands.dashboard.session"  # this module, also when run as __main__
NOT_FLAGS = ("handler", "serve", "token")  # what a session never takes from the server's arguments
# never inherited by a session: the token itself, and Textual's log (it would record each key typed)
SCRUBBED_ENV = ("COREROLL_TOKEN", "TEXTUAL_LOG", "TEXTUAL")


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def encode_settings(args: argparse.Namespace, admin: str | None) -> str:
    """The sessions' settings: the dashboard's flags (not --serve, not --token) and the admin token."""
    flags = {k: v for k, v in vars(args).items() if k not in NOT_FLAGS and _jsonable(v)}
    return json.dumps({"flags": flags, "admin_token": admin})


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


def session_command() -> str:
    """The command textual-serve runs through a shell for each session: no secret in it. `exec`, so
    the session is our child and notices when we are gone."""
    return "exec " + shlex.join([sys.executable, "-m", SESSION_MODULE])


def serve_setup(args: argparse.Namespace) -> ServeSetup:
    """Check the flags once (a bad etcd flag fails here, not in every browser tab); the sessions'
    settings go into the environment only once serving starts (`ServeSetup.prepare_environment`)."""
    resolve(args)
    admin = None if args.read_only else admin_token(args)
    return ServeSetup(
        listen=args.serve,
        session_command=session_command(),
        public_url=args.serve_public_url,
        read_only=bool(args.read_only),
        has_admin_token=admin is not None,
        keymap_path=args.keymap,
        theme=args.theme,
        session_env={SESSION_ENV: encode_settings(args, admin)},
        scrubbed_env=SCRUBBED_ENV,
    )


def session_setup(environ: MutableMapping[str, str]) -> tuple[DashboardSetup, Secret | None]:
    """A session's read-only dashboard and the admin token that unlocks writes (None: never), the
    settings taken out of `environ`."""
    args, secret = take_settings(environ)
    return dashboard_setup(args, admin_by=f"{current_user()} via browser"), secret


def main() -> int:
    try:
        setup, secret = session_setup(os.environ)
        app = ui_module("browser_session").session_app(setup, secret)
    except (ValueError, OSError, UIUnavailable) as exc:
        print(f"coreroll browser session: {exc}", file=sys.stderr)
        return 1
    return int(app.run(mouse=setup.mouse) or 0)


if __name__ == "__main__":
    sys.exit(main())
