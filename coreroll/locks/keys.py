"""Where locksmith keeps its semaphores (prefixes: `coreroll.wire.keys`), with Go's url.QueryEscape
for group names.

- default group "": `coreos.com/updateengine/rebootlock/semaphore`
- group g: `coreos.com/updateengine/rebootlock/groups/<QueryEscape(g)>/semaphore`

Go's QueryEscape keeps `A-Z a-z 0-9 - _ . ~`, writes a space as `+`, and every other UTF-8 byte as
`%XX` (uppercase hex) - exactly Python's `quote_plus(s, safe="")`. These are v3 keys; the v2 store
puts a `/` in front.
"""

from __future__ import annotations

import re

from coreroll.wire.keys import (
    LOCK_DEFAULT_KEY,
    LOCK_GROUPS_PREFIX,
    LOCK_PREFIX,
    LOCK_SEMAPHORE_LEAF,
    lock_group_key,
    query_escape,
    query_unescape,
)

DEFAULT_KEY = LOCK_DEFAULT_KEY
GROUPS_PREFIX = LOCK_GROUPS_PREFIX
__all__ = [
    "DEFAULT_KEY",
    "GROUPS_PREFIX",
    "LOCK_PREFIX",
    "group_from_key",
    "group_label",
    "is_semaphore_key",
    "query_escape",
    "query_unescape",
    "semaphore_key",
]
_GROUP_KEY = re.compile(r"^" + re.escape(GROUPS_PREFIX) + r"([^/]+)/" + re.escape(LOCK_SEMAPHORE_LEAF) + "$")


def semaphore_key(group: str = "") -> str:
    """The v3 key of `group`'s semaphore ("" is locksmith's default group)."""
    if not group:
        return DEFAULT_KEY
    return lock_group_key(query_escape(group))


def group_from_key(key: str) -> str:
    """The group name a semaphore key belongs to; ValueError when it is not a semaphore key."""
    key = key.lstrip("/")
    if key == DEFAULT_KEY:
        return ""
    match = _GROUP_KEY.match(key)
    if not match:
        raise ValueError(f"{key!r} is not a locksmith semaphore key")
    try:
        return query_unescape(match.group(1))
    except (ValueError, UnicodeDecodeError):
        # Not written by QueryEscape; name the group by its raw key segment rather than hide it.
        return match.group(1)


def is_semaphore_key(key: str) -> bool:
    key = key.lstrip("/")
    return key == DEFAULT_KEY or bool(_GROUP_KEY.match(key))


def group_label(group: str) -> str:
    """How a group is named to a person: the default group has no name."""
    return group if group else "(default)"
