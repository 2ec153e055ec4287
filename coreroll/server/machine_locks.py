"""One-at-a-time Omaha requests per machine id, inside one server process.

``MachineLocks``: ``await acquire(machine_id)`` (or ``try_acquire(machine_id)`` first: True when it
was free) ... ``release(machine_id)`` (in a ``finally``).
Requests from one machine run one after another, so each reads the state the one before it
committed: a refusal decided from an older state can never overwrite a grant made meanwhile.
Uncontended it costs one dict insert and delete (no lock object); only a waiting request gets a
future, and the lock is handed to waiters in arrival order. Across server processes (PostgreSQL)
the write transaction re-checks the row instead (``Registry.unchanged``).
"""

from __future__ import annotations

import asyncio
from collections import deque


class MachineLocks:
    def __init__(self) -> None:
        # machine id -> requests waiting for it (None: none yet); present while one request holds it
        self._held: dict[str, deque[asyncio.Future[None]] | None] = {}

    def __len__(self) -> int:
        return len(self._held)

    def try_acquire(self, machine_id: str) -> bool:
        """Take the machine if nobody holds it (no coroutine: the usual, uncontended case)."""
        if machine_id in self._held:
            return False
        self._held[machine_id] = None  # a queue only once somebody waits: none per uncontended check
        return True

    async def acquire(self, machine_id: str) -> None:
        held = self._held
        if machine_id not in held:
            held[machine_id] = None
            return
        waiting = held[machine_id]
        if waiting is None:
            waiting = held[machine_id] = deque()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(machine_id)  # handed over just as we were cancelled: pass it on
            elif turn in waiting:
                waiting.remove(turn)
            raise

    def release(self, machine_id: str) -> None:
        waiting = self._held[machine_id]
        while waiting:  # None or empty: nobody waits
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._held[machine_id]
