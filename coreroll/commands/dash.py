"""`coreroll dash` (also plain `coreroll`): the live dashboard over etcd and the update server.

    coreroll [dash] [--etcd URL[,URL]] [--server URL] [--etcd-api v3|v2] [--etcd-cafile F]
                    [--etcd-certfile F] [--etcd-keyfile F] [--etcd-username U] [--etcd-password P]
                    [--token T] [--read-only] [--airlock] [--refresh SECONDS] [--mouse]
                    [--keymap FILE] [--theme NAME]

Endpoints and secrets: `--etcd` / COREROLL_ETCD / LOCKSMITHCTL_ENDPOINT, the TLS/auth flags also
from LOCKSMITHCTL_ETCD_* (resolved exactly as `coreroll lock` does); `--server` / COREROLL_SERVER;
`--token` / COREROLL_TOKEN, else the token file the server wrote (`<data dir>/token`).
With neither --etcd nor --server the dashboard uses locksmithctl's default etcd endpoints.
Keys: `--keymap FILE` > COREROLL_KEYMAP > `$XDG_CONFIG_HOME/coreroll/keys.toml`, per binding id.

This module never imports Textual: the app (`tui.run`) is loaded inside the handler by name, so
`coreroll` stays importable (and testable) without the UI.
"""

from __future__ import annotations

import argparse
import importlib

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
    """The dashboard's flags (shared with `python -m tui`)."""
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
    parser.set_defaults(group=None, json=False)


def run(args: argparse.Namespace) -> int:
    runner = importlib.import_module("tui.run")
    return int(runner.run_dashboard(args))
