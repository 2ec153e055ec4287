"""One module per `coreroll` subcommand; each defines `register(subparsers)`.

`SUMMARIES`: every subcommand (its module's name) with the help line it registers, so `coreroll`
lists them all while importing only the one that runs (tests/test_cli_startup.py keeps it true).
Nothing heavy is imported here: this package loads on every `coreroll` start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

SUMMARIES = {
    "agent": "run one node: update engine, reboot manager, status in etcd",
    "channel": "list channels, pin or unpin one, sync with upstream now",
    "dash": "the live dashboard (default command)",
    "demo": "the whole system on this machine: etcd, server, a simulated fleet, a rollout, the dashboard",
    "etcd": "run an embedded etcd (127.0.0.1, free port), optionally around a command",
    "fleet": "run N simulated nodes (agents) against an update server and etcd",
    "group": "list server groups, change rollout policy, pause/resume",
    "instances": "list the machines the update server knows",
    "lock": "locksmith reboot locks: status, lock, unlock, set-max, groups",
    "node": "inspect a node's state directory (partitions, update status)",
    "release": "publish, promote and list releases on the update server",
    "report": "report a real Flatcar host (update_engine, USR partition) to etcd and run its commands",
    "server": "run the Omaha update server (channels, releases, rollout policy, live feed)",
}


def log_daemon_to_stderr(verbose: bool) -> None:
    """Logging for the long-running node commands (agent, report): timestamped lines on stderr."""
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for a long-running command's clean stop. Where no handler
    can be installed (off the main thread: RuntimeError; a loop without them: NotImplementedError)
    SIGINT keeps Python's default, KeyboardInterrupt."""
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop
