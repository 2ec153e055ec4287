"""update_engine's status (GetStatus's five values) read without trusting them, from D-Bus or from
`update_engine_client -status` output (`LAST_CHECKED_TIME=`, `PROGRESS=`, `CURRENT_OP=`,
`NEW_VERSION=`, `NEW_SIZE=` lines; other lines, such as log output, are ignored).

Numbers are checked with explicit patterns and bounds: sizes 0 .. 2^63-1, the last check time
0 .. 9999-12-31T23:59:59Z (the latest time the dashboard shows: `coreroll.watch.parse.TIME_MAX`),
progress a finite 0..1. A number out of bounds is unknown (None, published as null) with a problem.
A status that is not one of update_engine's eight UPDATE_STATUS_* names is reported as it is
(control characters made visible, capped) with a problem saying so, never dropped.

Public API: `snapshot_from_dbus(values, source) -> (EngineSnapshot, problems)`,
`parse_client_status(text, source) -> (EngineSnapshot, problems)`, `UNKNOWN_STATUS`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from coreroll.node.engine_types import EngineSnapshot
from coreroll.omaha.codes import UpdateStatus
from coreroll.textsafe import visible
from coreroll.watch.parse import TIME_MAX
from coreroll.wirenum import NumberError, parse_int

__all__ = ["UNKNOWN_STATUS", "parse_client_status", "snapshot_from_dbus"]

UNKNOWN_STATUS = "unknown status"  # what update_engine's UpdateStatusToString says for the unknown
_INT64_MAX = 2**63 - 1
_TIME_MAX = int(TIME_MAX)
_FLOAT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?")
_STATUS = re.compile(r"UPDATE_STATUS_[A-Z_]{1,48}")
_VERSION = re.compile(r"[0-9A-Za-z.+_~-]{0,64}")
_KEYS = {
    "LAST_CHECKED_TIME": "last_checked_time",
    "PROGRESS": "progress",
    "CURRENT_OP": "status",
    "NEW_VERSION": "new_version",
    "NEW_SIZE": "new_size",
}


def _shown(text: str) -> str:
    return visible(text[:64]) + ("..." if len(text) > 64 else "")


def _count(value: object, name: str, high: int, source: str, problems: list[str]) -> int | None:
    if isinstance(value, str):
        try:
            return parse_int(value.strip(), name, 0, high, signed=True)
        except NumberError as exc:
            problems.append(f"{source}: {visible(str(exc))}; unknown")
            return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        problems.append(f"{source}: {name} '{_shown(str(value))}' is out of range (0 to {high}); unknown")
        return None
    return value


def _progress(value: object, source: str, problems: list[str]) -> float:
    if isinstance(value, str):
        if not _FLOAT.fullmatch(value.strip()):
            problems.append(f"{source}: progress '{_shown(value)}' is not a number")
            return 0.0
        value = float(value.strip())
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        problems.append(f"{source}: progress '{_shown(str(value))}' is not a finite number")
        return 0.0
    if not 0.0 <= value <= 1.0:
        problems.append(f"{source}: progress {value!r} is outside 0..1")
        return min(1.0, max(0.0, float(value)))
    return float(value)


def _status(value: object, source: str, problems: list[str]) -> str:
    text = value if isinstance(value, str) else repr(value)
    if text in UpdateStatus.__members__:
        return text
    if _STATUS.fullmatch(text):
        problems.append(f"{source}: {text} is not one of update_engine's statuses; reported as is")
        return text
    problems.append(f"{source}: status '{_shown(text)}' is not an UPDATE_STATUS_* name")
    return f"{UNKNOWN_STATUS}: {_shown(text)}"


def _version(value: object, source: str, problems: list[str]) -> str:
    text = value if isinstance(value, str) else repr(value)
    if _VERSION.fullmatch(text):
        return text
    problems.append(f"{source}: new version '{_shown(text)}' is not a version")
    return ""


def snapshot_from_dbus(values: Sequence[object], source: str) -> tuple[EngineSnapshot, list[str]]:
    """GetStatus's reply or a StatusUpdate signal body: (x, d, s, s, x)."""
    problems: list[str] = []
    if len(values) != 5:
        problems.append(f"{source}: expected 5 values (xdssx), got {len(values)}")
        values = [*values, 0, 0.0, UNKNOWN_STATUS, "", 0][:5] if len(values) < 5 else values[:5]
    checked, progress, status, new_version, new_size = values
    return (
        EngineSnapshot(
            status=_status(status, source, problems),
            progress=_progress(progress, source, problems),
            new_version=_version(new_version, source, problems),
            new_size=_count(new_size, "new size", _INT64_MAX, source, problems),
            last_checked_time=_count(checked, "last checked time", _TIME_MAX, source, problems),
        ),
        problems,
    )


def parse_client_status(
    text: str, source: str = "update_engine_client -status"
) -> tuple[EngineSnapshot, list[str]]:
    found: dict[str, str] = {}
    for line in text.splitlines()[:1024]:
        key, sep, value = line.strip().partition("=")
        if sep and key in _KEYS and _KEYS[key] not in found:
            found[_KEYS[key]] = value
    problems: list[str] = []
    missing = [key for key, name in _KEYS.items() if name not in found]
    if missing:
        problems.append(f"{source}: no {', '.join(missing)} line in the output")
    snapshot, more = snapshot_from_dbus(
        [
            found.get("last_checked_time", "0"),
            found.get("progress", "0"),
            found.get("status", UNKNOWN_STATUS),
            found.get("new_version", ""),
            found.get("new_size", "0"),
        ],
        source,
    )
    return snapshot, problems + more
