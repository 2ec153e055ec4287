"""Durations on the command line: ``"90"``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` -> seconds
(argparse's ArgumentTypeError otherwise, so the flag is named in the error)."""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$", re.ASCII)  # not "٣d"


def duration(text: str) -> int:
    """``"90"``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 3600, 15m, 1h30m, 1d)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
