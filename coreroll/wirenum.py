"""Numbers from outside (HTTP headers, query strings, XML attributes) parsed strictly.

``str.isdigit()`` accepts ``"²"`` (and ``int()`` then raises), ``int()`` accepts ``"٣"``, ``" 5"``,
``"+5"`` and ``"1_0"``, and refuses more than 4,300 digits with a ValueError that ends up as a 500.
So every number from the network goes through here: an explicit ASCII pattern, and a bound checked
on the digit string's length before ``int()`` ever sees it.

- ``parse_int(raw, what, low, high, signed=False) -> int``: ``[0-9]+`` (``[+-]?`` when ``signed``),
  surrounding blanks allowed, value in ``[low, high]``; else ``NumberError`` whose ``str()`` names
  ``what`` and the (shortened) input.
- ``parse_capped(raw, cap) -> int | None``: ASCII digits only (None otherwise); any value above ``cap``
  is returned as ``cap``. For byte positions, where "more than the file" is all that matters.
"""

from __future__ import annotations

import re

__all__ = ["INT64_MAX", "INT64_MIN", "NumberError", "parse_capped", "parse_int"]

# Go's int64: what locksmith (and etcd's JSON readers in Go) can read back
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")
_SHOWN = 40  # characters of a bad input quoted in an error


class NumberError(ValueError):
    """A number from outside that is not a plain ASCII integer in range; ``str()`` says which."""


def _quoted(raw: str) -> str:
    if len(raw) <= _SHOWN:
        return repr(raw)
    return f"{raw[:_SHOWN]!r}... ({len(raw)} characters)"


def _magnitude_fits(digits: str, bound: int) -> bool:
    """Whether ``int(digits) <= bound`` can hold, from the length alone (no int() of a huge string)."""
    return len(digits.lstrip("0")) <= len(str(bound))


def parse_int(raw: str, what: str, low: int, high: int, *, signed: bool = False) -> int:
    text = raw.strip(" \t")
    if not (_SIGNED if signed else _UNSIGNED).fullmatch(text):
        kind = "an integer" if signed else "a non-negative integer"
        raise NumberError(f"{what}={_quoted(raw)} is not {kind} (ASCII digits only)")
    if not _magnitude_fits(text.lstrip("+-"), max(abs(low), abs(high))):
        raise NumberError(f"{what}={_quoted(raw)} is out of range ({low} to {high})")
    value = int(text)
    if not low <= value <= high:
        raise NumberError(f"{what}={_quoted(raw)} is out of range ({low} to {high})")
    return value


def parse_capped(raw: str, cap: int) -> int | None:
    if not _UNSIGNED.fullmatch(raw):
        return None
    if not _magnitude_fits(raw, cap):
        return cap
    return min(int(raw), cap)
