"""The update engine's persisted state: `<state>/update_engine.json`.

update_engine keeps its status in memory (GetStatus over D-Bus) and a few prefs on disk
(previous-version, aleph-version). coreroll keeps both in one JSON file so `coreroll node status`
can print `update_engine_client -status` lines for a node whose engine runs in another process.

File format (one JSON object, written atomically: temp file + rename):

    {
      "format": 1,
      "current_operation": "UPDATE_STATUS_IDLE",  # one of update_engine's 8 UPDATE_STATUS_* names
      "progress": 0.0,                     # 0.0 .. 1.0 while downloading
      "new_version": "",                   # version being / been installed ("" when none)
      "new_size": 0,                       # payload size in bytes (0 when none)
      "last_checked_time": 0,              # epoch seconds (the node's clock) of the last check answered
      "previous_version": null,            # pref: the version updated away from; null = never written,
                                           #   "" = reset after the first check following a reboot
      "aleph_version": "1.0.0",            # pref: the first version this node ran
      "boot_id": "...",                    # the boot this status belongs to
      "current_version": "1.0.0",          # version of the booted partition
      "last_error": null,                  # last error code reported (3/0), e.g. 10
      "last_error_name": null,             # its update_engine name, e.g. "PayloadHashMismatchError"
      "updated_at": 1700000000.0           # epoch seconds (the node's clock) of this write
    }

Public API:
- `STATE_FILE` ("update_engine.json"), `EngineState` (dataclass, fields as above),
  `load_engine_state(path) -> EngineState | None` (None when the file does not exist; raises
  `EngineStateError` naming the file when it cannot be parsed; such a file is never overwritten),
  `save_engine_state(path, state)`.
`coreroll node status` (coreroll.commands.node) prints it as `update_engine_client -status` lines.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from coreroll.omaha.codes import UPDATE_STATUS_IDLE, UpdateStatus

STATE_FILE = "update_engine.json"
FORMAT_VERSION = 1


class EngineStateError(Exception):
    """The engine's state file exists but cannot be read."""


@dataclass
class EngineState:
    current_operation: str = str(UPDATE_STATUS_IDLE)
    progress: float = 0.0
    new_version: str = ""
    new_size: int = 0
    last_checked_time: int = 0
    previous_version: str | None = None
    aleph_version: str = ""
    boot_id: str = ""
    current_version: str = ""
    last_error: int | None = None
    last_error_name: str | None = None
    updated_at: float = 0.0

    def to_json(self) -> bytes:
        # vars() rather than asdict(): every field is a plain value, and this runs on every status change.
        return json.dumps({"format": FORMAT_VERSION, **vars(self)}, indent=2, sort_keys=True).encode()


def _check_types(raw: dict[str, Any], path: Path) -> EngineState:
    known = {f.name for f in fields(EngineState)}
    values = {k: v for k, v in raw.items() if k in known}
    state = EngineState(**values)
    if state.current_operation not in UpdateStatus.__members__:
        raise EngineStateError(
            f"{path}: current_operation {state.current_operation!r} is not an UPDATE_STATUS_* name"
        )
    if not isinstance(state.progress, int | float) or not 0.0 <= float(state.progress) <= 1.0:
        raise EngineStateError(f"{path}: progress {state.progress!r} is not a number in 0..1")
    for name in ("new_size", "last_checked_time"):
        if not isinstance(getattr(state, name), int):
            raise EngineStateError(f"{path}: {name} {getattr(state, name)!r} is not an integer")
    for name in ("new_version", "aleph_version", "boot_id", "current_version"):
        if not isinstance(getattr(state, name), str):
            raise EngineStateError(f"{path}: {name} {getattr(state, name)!r} is not a string")
    if state.previous_version is not None and not isinstance(state.previous_version, str):
        raise EngineStateError(f"{path}: previous_version {state.previous_version!r} is not a string")
    return state


def load_engine_state(path: Path) -> EngineState | None:
    """The state in `path`, or None when there is none yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EngineStateError(f"{path}: cannot read: {exc}") from exc
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise EngineStateError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise EngineStateError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    if raw.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise EngineStateError(f"{path}: unknown format {raw.get('format')!r} (this coreroll reads 1)")
    try:
        return _check_types(raw, path)
    except TypeError as exc:
        raise EngineStateError(f"{path}: {exc}") from exc


def save_engine_state(path: Path, state: EngineState) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".update_engine.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(state.to_json())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
