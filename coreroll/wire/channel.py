"""What a channel name may be, wherever one is taken: the `set-channel` command a node reads from
etcd (`coreroll.node.commandrunner.channel_arg`, for the agent and `coreroll report`) and the
dashboard's action that writes it (`coreroll.watch.actions.Actions.set_channel`).

The name becomes update.conf's `GROUP=` line and the Omaha `track` update_engine sends. Nebraska
takes any non-empty track of at most 256 characters (backend/pkg/api/db/migrations/
0009_group_track_names.sql: `varchar(256) ... check (track <> '')`; backend/api/spec.yaml `track:
maxLength: 256`); coreroll's Omaha parser takes 255 (`coreroll.omaha.widths.MAX_TRACK`, which
`CHANNEL_MAX` equals; tests/wire/test_channel.py checks it, this module stays import-light). Within
that, only names that read the same in update_engine's and systemd's update.conf parsers, a
shell, an XML attribute and a terminal are taken: ASCII letters, digits, `.`, `_` and `-`,
starting with a letter or digit. Every channel Flatcar and Nebraska ship (alpha, beta, stable,
edge, lts, group UUIDs) fits.

Public API: `CHANNEL_MAX`, `CHANNEL_RULE` (the rule in words), `is_channel_name(value) -> bool`,
`channel_problem(value) -> str | None` (why `value` is not a channel name, the value shown
shortened with control characters escaped).
"""

from __future__ import annotations

import re
from typing import TypeGuard

from coreroll.textsafe import visible

__all__ = ["CHANNEL_MAX", "CHANNEL_RULE", "channel_problem", "is_channel_name"]

CHANNEL_MAX = 255  # characters: coreroll.omaha.widths.MAX_TRACK
_CHANNEL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{CHANNEL_MAX - 1}}}")
CHANNEL_RULE = f"1-{CHANNEL_MAX} of A-Z a-z 0-9 . _ -, starting with a letter or digit"
_SHOWN = 60  # characters of a refused name quoted back


def is_channel_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _CHANNEL.fullmatch(value) is not None


def channel_problem(value: object) -> str | None:
    """None for a channel name; else '<value> is not a channel name (<rule>)'."""
    if is_channel_name(value):
        return None
    if not isinstance(value, str):
        return f"{type(value).__name__} {visible(repr(value)[:_SHOWN])} is not a channel name"
    shown = visible(value[:_SHOWN])
    if len(value) > _SHOWN:
        shown += f"... ({len(value)} characters)"
    return f"'{shown}' is not a channel name ({CHANNEL_RULE})"
