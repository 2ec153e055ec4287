"""Finding a node by name for the palette's "go to node": fuzzy, over hostnames and machine ids,
quick at 100,000 nodes. Plain Python (no Textual).

    index = NodeIndex((row.machine_id, row.hostname) for row in model.rows.values())
    for match in index.search("web-12", limit=10):
        match.machine_id, match.name, match.by, match.score, match.offsets
    match_one("sort", "sort by the next column")  # (score, offsets) or None: the same for one name

Matching ignores case and works on the names as the screen shows them (`coreroll.textsafe.visible`:
a control character matches as the escape it is shown as). Matches come best first, in tiers: the
whole name (score 1.0), a prefix (0.9), a substring (0.8 at the start of a word, else 0.7), and
for hostnames the letters in order with gaps (0.3 to 0.6, tighter is better). A node is listed
once, by its best name.

Cost: the tiers run in that order and stop once `limit` nodes are found, so typing the start of a
name costs a bisect in the sorted names plus `limit` rows; a query that matches few names costs one
C-level scan of all names joined (str.find, then one regex). Nothing is worse than linear in the
names' length: the fuzzy pattern `[^a\\n]*+(a)[^b\\n]*+(b)...` is anchored at a line start and
possessive, so it never backtracks (Textual's own fuzzy matcher tries every way the letters fit, which a long
hostile hostname makes exponential). Measured in bench/palette.py.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate

from coreroll.textsafe import visible

HOSTNAME = "hostname"
MACHINE_ID = "machine id"
MAX_QUERY = 256  # longer input is cut: no name is longer, and the pattern stays small

_Add = Callable[[int, float, Iterable[int]], bool]  # keep entry i with this score; True when full


@dataclass(frozen=True, slots=True)
class NodeMatch:
    machine_id: str
    name: str  # the matched name as shown (visible): the hostname or the machine id
    by: str  # HOSTNAME or MACHINE_ID
    score: float  # 0..1, higher is better
    offsets: tuple[int, ...]  # the characters of `name` that matched (empty: do not highlight)


class NodeIndex:
    def __init__(self, nodes: Iterable[tuple[str, str | None]]) -> None:
        """`nodes`: (machine id, hostname or None) of every node."""
        entries: list[tuple[str, str, str, str]] = []  # (lowercase name, name, machine id, by)
        for machine_id, hostname in nodes:
            shown = visible(machine_id)
            entries.append((shown.lower(), shown, machine_id, MACHINE_ID))
            if hostname:
                shown = visible(hostname)
                entries.append((shown.lower(), shown, machine_id, HOSTNAME))
        entries.sort()
        self._lower = [e[0] for e in entries]
        self._entries = entries
        self._text, self._starts = _joined(self._lower)
        # the fuzzy tier reads hostnames only: nobody types a machine id's letters with gaps, and
        # the hex ids are three quarters of the text
        self._hosts = [i for i, entry in enumerate(entries) if entry[3] == HOSTNAME]
        self._host_text, self._host_starts = _joined([self._lower[i] for i in self._hosts])

    def __len__(self) -> int:
        return len(self._entries)

    def first(self, limit: int) -> list[NodeMatch]:
        """Nodes in name order (hostnames first), for the palette before anything is typed."""
        found: dict[str, NodeMatch] = {}
        for by in (HOSTNAME, MACHINE_ID):
            for i, entry in enumerate(self._entries):
                if len(found) >= limit:
                    return list(found.values())
                if entry[3] == by and entry[2] not in found:
                    found[entry[2]] = self._match(i, 0.0, ())
        return list(found.values())

    def search(self, query: str, limit: int) -> list[NodeMatch]:
        q = query.strip().lower()[:MAX_QUERY]
        if not q:
            return self.first(limit)
        found: dict[str, NodeMatch] = {}

        def add(i: int, score: float, offsets: Iterable[int]) -> bool:
            """Keep entry i's node unless it is listed already (a hostname replaces its machine id
            at the same score: it is the name the table shows); True once `limit` are found."""
            _, _, machine_id, by = self._entries[i]
            known = found.get(machine_id)
            if known is None or (by == HOSTNAME and known.by == MACHINE_ID and score >= known.score):
                found[machine_id] = self._match(i, score, tuple(offsets))
            return len(found) >= limit

        if self._prefixes(q, add) or self._substrings(q, add) or len(q) < 2:
            return self._ranked(found)
        self._fuzzy(q, add)
        return self._ranked(found)

    def _prefixes(self, q: str, add: _Add) -> bool:
        lower = self._lower
        i = bisect_left(lower, q)
        while i < len(lower) and lower[i].startswith(q):
            if add(i, 1.0 if lower[i] == q else 0.9, range(len(q))):
                return True
            i += 1
        return False

    def _substrings(self, q: str, add: _Add) -> bool:
        text, starts, lower = self._text, self._starts, self._lower
        at = text.find(q)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            offset = at - starts[i]
            if offset:  # offset 0 is a prefix: listed already
                word_start = not lower[i][offset - 1].isalnum()
                if add(i, 0.8 if word_start else 0.7, range(offset, offset + len(q))):
                    return True
            at = text.find(q, starts[i] + len(lower[i]) + 1)  # the next name
        return False

    def _fuzzy(self, q: str, add: _Add) -> None:
        # possessive (*+): a line that fails is given up at once, never re-split
        steps = "".join(f"[^{re.escape(c)}\n]*+({re.escape(c)})" for c in q)
        starts = self._host_starts
        for found in re.finditer("(?m)^" + steps, self._host_text):
            line = bisect_right(starts, found.start()) - 1
            offsets = [found.start(n) - starts[line] for n in range(1, len(q) + 1)]
            span = offsets[-1] - offsets[0] + 1
            if add(self._hosts[line], 0.3 + 0.3 * len(q) / span, offsets):
                return

    def _match(self, i: int, score: float, offsets: tuple[int, ...]) -> NodeMatch:
        lower, name, machine_id, by = self._entries[i]
        if len(lower) != len(name):  # lowercasing changed the length: offsets would not fit
            offsets = ()
        return NodeMatch(machine_id, name, by, score, offsets)

    @staticmethod
    def _ranked(found: dict[str, NodeMatch]) -> list[NodeMatch]:
        return sorted(found.values(), key=lambda match: -match.score)


def match_one(query: str, name: str) -> tuple[float, tuple[int, ...]] | None:
    """`query` against one name (a command's description), scored as `NodeIndex.search` scores:
    (score, offsets of the matched characters), or None. Linear in the name's length."""
    q, lower = query.strip().lower(), name.lower()
    if not q:
        return None
    if lower.startswith(q):
        return (1.0 if lower == q else 0.9), tuple(range(len(q)))
    at = lower.find(q)
    if at > 0:
        return (0.8 if not lower[at - 1].isalnum() else 0.7), tuple(range(at, at + len(q)))
    offsets: list[int] = []
    for ch in q:  # the leftmost way the letters fit, in one pass
        at = lower.find(ch, offsets[-1] + 1 if offsets else 0)
        if at < 0:
            return None
        offsets.append(at)
    return 0.3 + 0.3 * len(q) / (offsets[-1] - offsets[0] + 1), tuple(offsets)


def _joined(names: list[str]) -> tuple[str, list[int]]:
    """The names joined by newlines (no name holds one: they are `visible`), and where each starts."""
    return "\n".join(names), [0, *accumulate(len(name) + 1 for name in names)][: len(names)]
