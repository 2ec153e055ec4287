"""Reconnect delays shared by the sources: exponential with full jitter, capped, reset on success."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the delay before the next attempt: random in [base/2, min(cap, base * 2**n)]."""

    def __init__(self, base: float = 0.2, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return random.uniform(min(self.base / 2, ceiling), ceiling)

    def reset(self) -> None:
        self.attempts = 0
