"""locksmithd's reboot window (pkg/timeutil/periodic.go) and Go's `time.ParseDuration`.

START is `"HH:MM"` (every day) or `"Ddd HH:MM"` (every week; `sun`..`sat`, any case; 24 h clock);
LENGTH is a Go duration (`1h30m`, `45m`, `90s`). LENGTH must be < 24h without a day and < 7d with
one. The window is evaluated in the time zone of the datetime it is asked about (locksmithd uses
the host's local time).

Public API:
- `parse_go_duration(text) -> float` seconds; raises `ValueError` with Go's messages
  (`time: invalid duration "x"`, `time: unknown unit "d" in duration "1d"`, `time: missing unit ...`).
- `RebootWindow.parse(start, length)` raising `WindowError`; `.contains(dt)`, `.next_start(dt)`
  (the first start strictly after `dt`), `.previous_start(dt)` (the last start at or before `dt`),
  `.seconds_until_open(dt)` (0 inside the window), `str(window)`.
- `window_from_settings(start, length) -> RebootWindow | None`: both unset -> None (reboot any
  time); only one set -> `WindowError` (fatal in locksmithd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class WindowError(ValueError):
    """A reboot window that locksmithd would refuse to start with."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string, with Go's error messages."""
    original = text
    if text in ("0", "+0", "-0"):
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0.0
    while text:
        match = _PART.match(text)
        if match is None or match.end() == 0:
            raise ValueError(f'time: invalid duration "{original}"')
        whole, frac, unit = match.groups()
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{original}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{original}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{original}"')
        number = float(f"{whole or 0}.{frac or 0}")
        total += number * _UNITS[unit]
        text = text[match.end() :]
    return sign * total


@dataclass(frozen=True)
class RebootWindow:
    """A periodic window: `weekday` (0 = Sunday, as Go's time.Weekday) or None for daily."""

    weekday: int | None
    hour: int
    minute: int
    length: float  # seconds
    start_text: str = ""
    length_text: str = ""

    @classmethod
    def parse(cls, start: str, length: str) -> RebootWindow:
        parts = start.split()
        if len(parts) not in (1, 2):
            raise WindowError(f'reboot window start "{start}": expected "HH:MM" or "Ddd HH:MM"')
        weekday: int | None = None
        if len(parts) == 2:
            day = parts[0].lower()
            if day not in DAYS:
                raise WindowError(
                    f'reboot window start "{start}": unknown day "{parts[0]}" (expected one of {", ".join(DAYS)})'
                )
            weekday = DAYS.index(day)
        match = _TIME.match(parts[-1])
        if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise WindowError(f'reboot window start "{start}": "{parts[-1]}" is not a 24-hour HH:MM time')
        try:
            seconds = parse_go_duration(length.strip())
        except ValueError as exc:
            raise WindowError(f'reboot window length "{length}": {exc}') from None
        if seconds < 0:
            raise WindowError(f'reboot window length "{length}": cannot be negative')
        if weekday is None and seconds >= 24 * 3600:
            raise WindowError(f'reboot window length "{length}": a daily window must be shorter than 24h')
        if seconds >= 7 * 24 * 3600:
            raise WindowError(f'reboot window length "{length}": a weekly window must be shorter than 7 days')
        return cls(weekday, int(match.group(1)), int(match.group(2)), seconds, start, length)

    def __str__(self) -> str:
        return f"{self.start_text} {self.length_text}".strip() if self.start_text else repr(self)

    def previous_start(self, dt: datetime) -> datetime:
        """The latest window start at or before `dt`, in `dt`'s time zone."""
        candidate = dt.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.weekday is None:
            if candidate > dt:
                candidate -= timedelta(days=1)
            return candidate
        go_weekday = (dt.weekday() + 1) % 7  # Python: Monday 0; Go: Sunday 0
        candidate -= timedelta(days=(go_weekday - self.weekday) % 7)
        if candidate > dt:
            candidate -= timedelta(days=7)
        return candidate

    def next_start(self, dt: datetime) -> datetime:
        """The first window start strictly after `dt`."""
        step = timedelta(days=1 if self.weekday is None else 7)
        candidate = self.previous_start(dt) + step
        while candidate <= dt:  # only across a DST change
            candidate += step
        return candidate

    def contains(self, dt: datetime) -> bool:
        start = self.previous_start(dt)
        return dt.timestamp() < start.timestamp() + self.length

    def seconds_until_open(self, dt: datetime) -> float:
        """0 inside the window, else the seconds until the next start."""
        if self.contains(dt):
            return 0.0
        return max(0.0, self.next_start(dt).timestamp() - dt.timestamp())


def window_from_settings(start: str | None, length: str | None) -> RebootWindow | None:
    """locksmithd's rule: no window when both are unset; one without the other is an error."""
    if not start and not length:
        return None
    if not start or not length:
        missing = "LOCKSMITHD_REBOOT_WINDOW_START" if not start else "LOCKSMITHD_REBOOT_WINDOW_LENGTH"
        given = "LENGTH" if not start else "START"
        raise WindowError(f"reboot window {given} is set but {missing} is not: set both or neither")
    return RebootWindow.parse(start, length)
