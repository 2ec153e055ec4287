"""One module per `coreroll` subcommand; each defines `register(subparsers)`."""

from __future__ import annotations

import logging


def log_daemon_to_stderr(verbose: bool) -> None:
    """Logging for the long-running node commands (agent, report): timestamped lines on stderr."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
