"""``ParseMemo``: update-check bodies seen before are not parsed again.

update_engine sends the very same bytes on every check of one boot (same version, bootid and 3/2
event), so a small fleet's re-checks are answered from a parsed copy: parsing is deterministic and
the parsed request is only read. Bounded: ``size`` bodies of at most ``max_body`` bytes, oldest out
first (an OrderedDict drops its oldest entry in O(1); a plain dict's first key sits behind ever more
deleted slots, costly on every miss).

Admission (TinyLFU's doorkeeper): a body enters the memo at its second sighting while the hash of its
first is still among the last ``size`` first sightings. In a fleet larger than the memo every check
is a miss, and storing each body would only evict another that will not come back either while
churning ~40 objects per check (about a tenth of a check's cost); such bodies now never get in.
A collision of hashes only admits a body early: the memo itself is keyed by the whole body.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

Parsed = TypeVar("Parsed")


class ParseMemo(Generic[Parsed]):
    __slots__ = ("_first_seen", "_memo", "max_body", "size")

    def __init__(self, size: int, max_body: int) -> None:
        self.size = size
        self.max_body = max_body
        self._memo: OrderedDict[bytes, Parsed] = OrderedDict()
        self._first_seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._memo)

    def get(self, body: bytes) -> Parsed | None:
        return self._memo.get(body)

    def offer(self, body: bytes, parsed: Parsed) -> None:
        """``parsed`` was just parsed from ``body`` (not in the memo): keep it if ``body`` came before."""
        if len(body) > self.max_body:
            return
        first_seen = self._first_seen
        digest = hash(body)
        if digest not in first_seen:
            if len(first_seen) >= self.size:
                first_seen.clear()  # a fresh window: what is seen again soon gets in
            first_seen.add(digest)
            return
        first_seen.discard(digest)
        memo = self._memo
        if len(memo) >= self.size:
            memo.popitem(last=False)
        memo[body] = parsed
