"""`coreroll server`'s retention flags (issue 18 §4): ``--forget-instances-after``, ``--keep-activity``
(and the older ``--history-days``, in days), and the bench's retention interval.

``add_arguments(parser)`` defines them; ``settings_from(args) -> dict`` gives the ``ServerSettings``
fields they set (``ServerSettings`` refuses values that would lose data). What they drive:
``coreroll.server.retention``.
"""

from __future__ import annotations

import argparse
from typing import Any

from coreroll.durations import duration

NEVER = ("never", "off", "0")


def retention_duration(text: str) -> float:
    """``30d``, ``12h``, ``1d12h`` -> seconds; ``never`` (or ``off``, ``0``) -> 0: keep for ever."""
    if text.strip().lower() in NEVER:
        return 0.0
    try:
        return float(duration(text))
    except (argparse.ArgumentTypeError, ValueError, OverflowError):  # not one, or past any float
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 30d, 12h, 1d12h) or never"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--forget-instances-after", type=retention_duration, default="30d", metavar="DURATION",
                        help="forget a machine not seen for this long, with its history (default 30d; at least "
                        "1d; never: keep all); one in the middle of an update is never forgotten. "
                        "`coreroll instances --stale` lists what the next run forgets")  # fmt: skip
    parser.add_argument("--keep-activity", type=retention_duration, default="90d", metavar="DURATION",
                        help="delete activity and instance history older than this (default 90d; never: keep "
                        "all)")  # fmt: skip
    # The older spelling of --keep-activity (in days), still accepted.
    parser.add_argument("--history-days", type=float, metavar="DAYS", help=argparse.SUPPRESS)
    # bench/omaha.py: the retention task's interval (default 60 s), so a purge starts when the bench wants
    parser.add_argument("--bench-retention-interval", type=float, default=60.0, help=argparse.SUPPRESS)


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "forget_instances_after": args.forget_instances_after,
        "keep_activity": args.keep_activity if args.history_days is None else args.history_days * 86400,
        "prune_interval_seconds": args.bench_retention_interval,
    }
