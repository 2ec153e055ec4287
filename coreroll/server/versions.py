"""Versions and channels.

- ``coreos_major(day)``: CoreOS's scheme, major = days since 2013-07-13 (the first CoreOS build);
  ``coreos_version(day, minor, patch)`` -> ``"4885.0.0"``; ``next_free_version(taken)`` is the
  default version of a release published without one.
- ``version_key(v)``: a sort key comparing dotted versions numerically (``"10.0" > "9.9"``);
  ``is_newer(a, b)``.
- ``DEFAULT_CHANNELS`` (alpha, beta, stable), ``PROMOTION`` (alpha -> beta -> stable),
  ``promotion_source(to)``: the channel a release must have been on to be promoted to ``to``.
- ``LEGACY_TRACKS``: CoreOS's amd64 and arm64 group UUIDs -> track names (still sent by old
  machines; Nebraska's ``initialFlatcarGroups``).
- ``retired_track_reason(track)``: why a machine on CoreOS's retired ``edge`` channel (by name or
  legacy UUID) is held when no group has that track; None for any other track.
- ``DEFAULT_BOARD`` (``amd64-usr``, what a request without ``board`` means, as in Nebraska),
  ``KNOWN_BOARDS``, ``valid_board(board)``: the boards a payload can be published for.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Container

EPOCH = dt.date(2013, 7, 13)
DEFAULT_CHANNELS: tuple[str, ...] = ("alpha", "beta", "stable")
PROMOTION: dict[str, str] = {"beta": "alpha", "stable": "beta"}
LEGACY_TRACKS: dict[str, str] = {
    "5b810680-e36a-4879-b98a-4f989e80b899": "alpha",
    "3fe10490-dd73-4b49-b72a-28ac19acfcdc": "beta",
    "9a2deb70-37be-4026-853f-bfdd6b347bbe": "stable",
    "72834a2b-ad86-4d6d-b498-e08a19ebe54e": "edge",
    # arm64
    "e641708d-fb48-4260-8bdf-ba2074a1147a": "alpha",
    "d112ec01-ba34-4a9e-9d4b-9814a685f266": "beta",
    "11a585f6-9418-4df0-8863-78b2fd3240f8": "stable",
    "b4b2fa22-c1ea-498c-a8ac-c1dc0b1d7c17": "edge",
}
RETIRED_TRACKS = frozenset({"edge"})
DEFAULT_BOARD = "amd64-usr"
KNOWN_BOARDS: tuple[str, ...] = ("amd64-usr", "arm64-usr")
_BOARD_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,30}-usr$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_PART_RE = re.compile(r"([0-9]+)|([^0-9]+)")  # ASCII digits only: "²" and "٣" are text here


def retired_track_reason(track: str) -> str | None:
    name = LEGACY_TRACKS.get(track.strip("{}").lower(), track)
    if name not in RETIRED_TRACKS:
        return None
    return (
        f"track {name} (CoreOS's retired {name} channel): no group has track {name}; "
        f"create one on a channel {name} to serve these machines"
    )


def coreos_major(day: dt.date) -> int:
    return (day - EPOCH).days


def coreos_version(day: dt.date | None = None, minor: int = 0, patch: int = 0) -> str:
    day = day or dt.datetime.now(dt.UTC).date()
    return f"{coreos_major(day)}.{minor}.{patch}"


def next_free_version(taken: Container[str], day: dt.date | None = None) -> str:
    """Today's CoreOS version (``<days since 2013-07-13>.0.0``), patch bumped past any taken one."""
    patch = 0
    while coreos_version(day, 0, patch) in taken:
        patch += 1
    return coreos_version(day, 0, patch)


def valid_board(board: str) -> bool:
    """``amd64-usr``, ``arm64-usr`` or another ``<arch>-usr`` (lowercase, at most 35 characters)."""
    return bool(_BOARD_RE.match(board))


def valid_version(version: str) -> bool:
    """A version usable in a URL path and a file name: 1-64 of ``[0-9A-Za-z.+_-]``, no ``..``."""
    return bool(_VERSION_RE.match(version)) and ".." not in version


@functools.lru_cache(maxsize=4096)  # a fleet runs a handful of versions; checks compare them constantly
def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Numeric parts compare as numbers, others as text; numbers sort before text at the same place.

    A number is keyed as (its length without leading zeros, those digits): the same order as its
    value, with no int() to overflow on a 5,000-digit part sent by a client.
    """
    key: list[tuple[int, int, str]] = []
    for part in version.split("+", 1)[0].split("."):
        for num, text in _PART_RE.findall(part):
            if num:
                digits = num.lstrip("0")
                key.append((0, len(digits), digits))
            else:
                key.append((1, 0, text))
    return tuple(key)


def is_newer(candidate: str, current: str) -> bool:
    return version_key(candidate) > version_key(current)


def promotion_source(to: str) -> str | None:
    """``beta`` -> ``alpha``, ``stable`` -> ``beta``; None for channels outside the promotion order."""
    return PROMOTION.get(to)


def channel_sort_key(name: str) -> tuple[int, str]:
    return (DEFAULT_CHANNELS.index(name), "") if name in DEFAULT_CHANNELS else (len(DEFAULT_CHANNELS), name)
