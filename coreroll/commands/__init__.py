"""One module per `coreroll` subcommand; each defines `register(subparsers)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal


def log_daemon_to_stderr(verbose: bool) -> None:
    """Logging for the long-running node commands (agent, report): timestamped lines on stderr."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for a long-running command's clean stop. Where no handler
    can be installed (off the main thread: RuntimeError; a loop without them: NotImplementedError)
    SIGINT keeps Python's default, KeyboardInterrupt."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop
