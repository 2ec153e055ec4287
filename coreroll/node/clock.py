"""Time for the node and the fleet simulator: real, or scaled so a rollout runs in minutes.

Public API:
- `Clock` (protocol): `now() -> float` epoch seconds (simulated for a scaled clock) and
  `async sleep(seconds)` in the clock's seconds. Everything in `coreroll.node` and
  `coreroll.fleet` takes a clock instead of calling `time.time()` / `asyncio.sleep()`, so the same
  code runs a real node and a thousand simulated ones.
- `RealClock()`: wall time.
- `ScaledClock(time_factor, start=None)`: simulated seconds run `time_factor` times faster than
  real ones. `now()` starts at `start` (default: the wall time at creation) and advances
  `time_factor` simulated seconds per real second; `sleep(s)` sleeps `s / time_factor` real seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Seconds since the epoch, and a sleep measured in the same seconds."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock time; `time_factor` is 1."""

    time_factor: float = 1.0

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Simulated time running `time_factor` x faster than real time.

    Uses the monotonic clock underneath so a wall-clock jump (NTP) does not move simulated time.
    """

    def __init__(self, time_factor: float, start: float | None = None) -> None:
        if time_factor <= 0:
            raise ValueError(f"time factor must be > 0, not {time_factor}")
        self.time_factor = float(time_factor)
        self._start = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._mono0) * self.time_factor

    def real_seconds(self, simulated: float) -> float:
        """How many real seconds `simulated` clock seconds take."""
        return simulated / self.time_factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.time_factor)
