"""locksmith's reboot semaphore as pure code: the rules and the exact JSON bytes.

`Semaphore(semaphore, max, holders)` mirrors locksmith's Go struct (lock/semaphore.go):
`semaphore` is the number of free slots, `max` the slot limit, `holders` the sorted machine ids.

- `lock(id)`: `SemaphoreFullError("semaphore is at N")` when `semaphore <= 0` (checked first, as Go
  does), `HolderExistsError("holder exists")`; else insert in sorted order and decrement.
- `unlock(id)`: `HolderNotFoundError("holder does not exist")`; else remove and increment.
- `set_max(n)`: `semaphore -= max - n; max = n`; holders untouched, so `semaphore` may go negative.
- Every number stays within Go's int64 (`INT64_MIN..INT64_MAX`), what locksmith can read: a change
  that would leave it (`set_max(2**63)`, an unlock at `semaphore == INT64_MAX`) raises
  `SemaphoreRangeError` and changes nothing (Go would wrap around silently).
- `to_json()` gives the bytes Go's `json.Marshal` writes: `{"semaphore":1,"max":1,"holders":null}`.
  Go writes `null` for a nil slice and `[]` for an empty one: a fresh semaphore has nil holders, but
  after the last holder unlocks Go's slice is empty, not nil, and locksmith writes `"holders":[]`.
  `holders_null` carries that distinction so a round trip keeps the bytes; `holders` is always a list.
- `parse_semaphore(raw, key)` accepts what Go's `json.Unmarshal` would put in the struct and raises
  `SemaphoreFormatError` naming `key` and the problem otherwise.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import Any

from coreroll.wirenum import INT64_MAX, INT64_MIN


class LockError(Exception):
    """A lock operation refused by the semaphore rules (or by the store)."""


class SemaphoreFullError(LockError):
    def __init__(self, available: int) -> None:
        self.available = available
        super().__init__(f"semaphore is at {available}")


class HolderExistsError(LockError):
    def __init__(self) -> None:
        super().__init__("holder exists")


class HolderNotFoundError(LockError):
    def __init__(self) -> None:
        super().__init__("holder does not exist")


def in_int64(value: int) -> bool:
    """Whether Go's int (int64 on every platform locksmith runs on) can hold `value`."""
    return INT64_MIN <= value <= INT64_MAX


class SemaphoreRangeError(LockError):
    """A change would put a number outside Go's int64, which locksmith could not read back."""

    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value
        super().__init__(
            f"{name} would be {value}, outside the int64 range locksmith can read "
            f"({INT64_MIN}..{INT64_MAX}); nothing written"
        )


class SemaphoreFormatError(LockError):
    """A semaphore key holds something that is not locksmith's semaphore JSON."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: not a locksmith semaphore: {problem}")


@dataclass
class Semaphore:
    semaphore: int = 1
    max: int = 1
    holders: list[str] = field(default_factory=list)
    # Only matters while `holders` is empty: serialize as `null` (Go nil slice) rather than `[]`.
    holders_null: bool = field(default=True, compare=False)

    def lock(self, holder: str) -> None:
        if self.semaphore <= 0:
            raise SemaphoreFullError(self.semaphore)
        index = bisect.bisect_left(self.holders, holder)
        if index < len(self.holders) and self.holders[index] == holder:
            raise HolderExistsError()
        # semaphore > 0 here, so semaphore - 1 cannot leave int64.
        self.holders.insert(index, holder)
        self.holders_null = False
        self.semaphore -= 1

    def unlock(self, holder: str) -> None:
        index = bisect.bisect_left(self.holders, holder)
        if index >= len(self.holders) or self.holders[index] != holder:
            raise HolderNotFoundError()
        semaphore = _checked("semaphore", self.semaphore + 1)
        del self.holders[index]
        self.semaphore = semaphore

    def set_max(self, new_max: int) -> int:
        """Apply locksmith's SetMax; returns the old max."""
        old = self.max
        maximum = _checked("max", new_max)
        semaphore = _checked("semaphore", self.semaphore - (old - maximum))
        self.semaphore, self.max = semaphore, maximum
        return old

    def holds(self, holder: str) -> bool:
        return holder in self.holders

    def copy(self) -> Semaphore:
        return Semaphore(self.semaphore, self.max, list(self.holders), self.holders_null)

    def to_json(self) -> bytes:
        holders = "null" if not self.holders and self.holders_null else go_json_strings(self.holders)
        return f'{{"semaphore":{self.semaphore},"max":{self.max},"holders":{holders}}}'.encode()


def _checked(name: str, value: int) -> int:
    if not in_int64(value):
        raise SemaphoreRangeError(name, value)
    return value


def new_semaphore() -> Semaphore:
    """locksmith's newSemaphore(): one slot, no holders (`"holders":null`)."""
    return Semaphore(1, 1, [], holders_null=True)


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Go's encoder is HTML-safe by default and escapes the JS line separators too.
_GO_ESCAPES.update({c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})


def go_json_string(text: str) -> str:
    """`text` as Go's encoding/json writes it (UTF-8 kept, lowercase \\u escapes)."""
    out = ['"']
    for char in text:
        escaped = _GO_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")  # Go replaces invalid UTF-8 (lone surrogates here) with U+FFFD
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def go_json_strings(values: list[str]) -> str:
    return "[" + ",".join(go_json_string(v) for v in values) + "]"


def _as_int(doc: dict[str, Any], name: str, key: str) -> int:
    value = doc.get(name)
    # bool is an int in Python but not a number in JSON; Go would refuse it.
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        what = "missing" if name not in doc else f"{json.dumps(value)} is not an integer"
        raise SemaphoreFormatError(key, f'"{name}" {what}')
    if not in_int64(value):  # Go's int is int64: locksmith could not read it
        raise SemaphoreFormatError(key, f'"{name}" {value} is out of the int64 range')
    return value


def parse_semaphore(raw: bytes | str, key: str) -> Semaphore:
    """Parse a stored semaphore; raises SemaphoreFormatError naming `key` and what is wrong."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        doc = json.loads(text)
    except ValueError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise SemaphoreFormatError(key, f"invalid JSON ({exc.args[0].split(':')[0]}) in {shown!r}") from exc
    except RecursionError as exc:
        raise SemaphoreFormatError(key, "invalid JSON (nested too deeply)") from exc
    if not isinstance(doc, dict):
        raise SemaphoreFormatError(key, f"expected a JSON object, found {type(doc).__name__}")
    # Go matches field names case-insensitively; accept the same spellings.
    lowered = {str(k).lower(): v for k, v in doc.items()}
    semaphore = _as_int(lowered, "semaphore", key)
    maximum = _as_int(lowered, "max", key)
    holders = lowered.get("holders")
    if holders is None:
        return Semaphore(semaphore, maximum, [], holders_null=True)
    if not isinstance(holders, list) or not all(isinstance(h, str) for h in holders):
        raise SemaphoreFormatError(key, '"holders" must be a list of machine-id strings or null')
    return Semaphore(semaphore, maximum, list(holders), holders_null=False)
