"""`coreroll dash` (also plain `coreroll`): the live dashboard over etcd and the update server.

    coreroll [dash] [--etcd URL[,URL]] [--server URL] [--etcd-api auto|v2|v3] [--etcd-cafile F]
                    [--etcd-certfile F] [--etcd-keyfile F] [--etcd-username U] [--etcd-password P]
                    [--token T] [--read-only] [--airlock] [--refresh SECONDS] [--mouse]
                    [--keymap FILE] [--theme NAME] [--serve [HOST:]PORT [--serve-public-url URL]]

Endpoints and secrets: `--etcd` / COREROLL_ETCD / LOCKSMITHCTL_ENDPOINT, the TLS/auth flags also
from LOCKSMITHCTL_ETCD_* (resolved exactly as `coreroll lock` does); `--server` / COREROLL_SERVER;
`--token` / COREROLL_TOKEN, else the token file the server wrote (`<data dir>/token`).
With neither --etcd nor --server the dashboard uses locksmithctl's default etcd endpoints.
Keys: `--keymap FILE` > COREROLL_KEYMAP > `$XDG_CONFIG_HOME/coreroll/keys.toml`, per binding id.
`--serve [HOST:]PORT` serves the same dashboard to browsers (textual-serve) instead, on 127.0.0.1
unless HOST says otherwise: each browser tab is a session, read-only until it is given the admin
token in its sign-in form (`tui.serve`).
`--etcd-api` (LOCKSMITHCTL_ETCD_API) is the API of the reboot locks only: auto (the default)
watches the semaphores on both v2 (where Flatcar's locksmithd keeps them) and v3, and the header
says which hold them; node status, commands and audit records are always v3.

With `coreroll.commands.dashboard` (flags -> `coreroll.watch.setup.DashboardSetup`, the browser
sessions' settings) this is the dashboard's composition root; the UI gets the finished setup
through `coreroll.commands.dashboard.ui` and never imports the commands, etcd, the server or the
locks (import-linter).
"""

from __future__ import annotations

import argparse
import sys

from coreroll.commands.lock import STRING_FLAGS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dash",
        help="the live dashboard (default command)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dashboard's flags."""
    parser.add_argument(
        "--etcd", "--endpoint", dest="endpoint", action="append", metavar="URL",
        help="etcd endpoint(s), repeatable or comma-separated (env COREROLL_ETCD)",
    )  # fmt: skip
    for name, text in STRING_FLAGS:
        if name != "group":
            parser.add_argument(f"--{name}", dest=name.replace("-", "_"), help=text + " (env LOCKSMITHCTL_*)")
    parser.add_argument("--server", metavar="URL", help="update server URL (env COREROLL_SERVER)")
    parser.add_argument(
        "--token", help="admin token for pause/resume (env COREROLL_TOKEN, else the server's token file)"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="watch only: hide and refuse every intervention"
    )
    parser.add_argument("--airlock", action="store_true", help="also show airlock (FleetLock) semaphores")
    parser.add_argument(
        "--refresh", type=float, default=0.2, metavar="SECONDS",
        help="minimum time between repaints (default 0.2 = at most 5 per second)",
    )  # fmt: skip
    parser.add_argument(
        "--stale-offline-grace", type=float, default=300.0, metavar="SECONDS",
        help="a lock holder offline this long is flagged stale; before that it shows as rebooting (default 300)",
    )  # fmt: skip
    parser.add_argument("--mouse", action="store_true", help="enable the mouse (off by default, for SSH)")
    parser.add_argument(
        "--keymap", metavar="FILE",
        help="key map (TOML, binding id = key) instead of $XDG_CONFIG_HOME/coreroll/keys.toml; wins over COREROLL_KEYMAP",
    )  # fmt: skip
    parser.add_argument(
        "--theme", metavar="NAME", help="colour theme (Textual's; the palette lists them); NO_COLOR wins"
    )
    parser.add_argument(
        "--serve", metavar="[HOST:]PORT",
        help="serve the dashboard to browsers on HOST:PORT (HOST 127.0.0.1 unless given); each "
        "session is read-only until the admin token is entered in its sign-in form",
    )  # fmt: skip
    parser.add_argument(
        "--serve-public-url", metavar="URL",
        help="with --serve behind a (TLS) proxy: the address browsers use, e.g. https://dash.example.org",
    )  # fmt: skip
    parser.set_defaults(group=None, json=False)


def report(exc: Exception) -> None:
    """A configuration problem on stderr, each line of it (a key map lists several) prefixed."""
    print(f"coreroll dash: {exc}".replace("\n", "\ncoreroll dash: "), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "serve_public_url", None) and not args.serve:
        print("coreroll dash: --serve-public-url needs --serve [HOST:]PORT", file=sys.stderr)
        return 1
    # the wiring loads etcd's and the server's clients: only when the dashboard really starts
    from coreroll.commands.dashboard import session
    from coreroll.commands.dashboard.ui import UIUnavailable, ui_module
    from coreroll.commands.dashboard.wiring import dashboard_setup

    try:
        if getattr(args, "serve", None):
            plan = session.serve_setup(args)
            return int(ui_module("serve").serve_dashboard(plan))
        setup = dashboard_setup(args)
        app = ui_module("run").build_app(setup)
    except (ValueError, OSError, UIUnavailable) as exc:  # a key map error lists every problem, one a line
        report(exc)
        return 1
    return int(app.run(mouse=setup.mouse) or 0)
