"""Per-source limit on NEW instance registrations, so one client cannot fill ``instance_cap`` and
lock real machines out (known instances are never limited).

``SourceLimiter(limit, window, clock)``: ``allow(source) -> bool`` counts a registration for
``source`` (the client IP after trusted-proxy handling) in fixed windows of ``window`` seconds.
Loopback sources are exempt: the fleet simulator and tests run many machines on the server's own
host, and a local client can reach the database anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

_MAX_TRACKED = 100_000  # sources remembered before expired windows are swept


class SourceLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._counts: dict[str, tuple[float, int]] = {}  # source -> (window start, registrations)

    @staticmethod
    def exempt(source: str) -> bool:
        try:
            return ipaddress.ip_address(source).is_loopback
        except ValueError:
            return False

    def allow(self, source: str) -> bool:
        if self.limit <= 0 or self.exempt(source):
            return True
        now = self.clock()
        start, count = self._counts.get(source, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.limit:
            return False
        if len(self._counts) >= _MAX_TRACKED:
            self._counts = {s: v for s, v in self._counts.items() if now - v[0] < self.window}
        self._counts[source] = (start, count + 1)
        return True
