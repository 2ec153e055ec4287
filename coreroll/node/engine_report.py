"""How an update engine records its status: the `EngineState` it keeps, written to
`<state>/update_engine.json` (`coreroll.node.engine_state`) and passed to `on_change(snapshot)`.

Public API:
- `StatusRecorder(state_path, boot_id, running_version, clock, on_change=None, log_prefix="")`:
  `state` (the persisted `EngineState`, loaded at construction: a new boot starts idle, only
  UPDATED_NEED_REBOOT survives a restart within the same boot), `status`, `snapshot`,
  `set(status=None, **changes)`, `notify()`, `progress(got, total)`, `restart_progress()`,
  `save(force=False)`.

Writes are throttled: a change that only moves `last_checked_time` rewrites the file at most
every 30 real seconds (`save(force=True)` writes anyway), download progress at most every 10 %.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coreroll.node.clock import Clock
from coreroll.node.engine_state import EngineState, load_engine_state, save_engine_state
from coreroll.node.engine_types import EngineSnapshot
from coreroll.omaha.codes import (
    UPDATE_STATUS_CHECKING_FOR_UPDATE,
    UPDATE_STATUS_IDLE,
    UPDATE_STATUS_UPDATED_NEED_REBOOT,
)

__all__ = ["StatusRecorder"]

log = logging.getLogger("coreroll.node.engine")  # the engine's own log lines, as before the split

_CHECKING = str(UPDATE_STATUS_CHECKING_FOR_UPDATE)
_PERSIST_EVERY = 30.0  # real seconds; see StatusRecorder.save
_PROGRESS_STEP = 0.01  # report progress in 1 % steps: enough for a progress bar, few writes


class StatusRecorder:
    """One engine's status; see the module docstring."""

    def __init__(
        self,
        state_path: Path,
        boot_id: str,
        running_version: str,
        clock: Clock,
        on_change: Callable[[EngineSnapshot], None] | None = None,
        log_prefix: str = "",
    ) -> None:
        self.state_path = state_path
        self.clock = clock
        self.on_change = on_change
        self._log_prefix = log_prefix
        self._last_progress_saved = 0.0
        self._saved_signature: tuple[Any, ...] = ()
        self._saved_at = 0.0
        self.state = self._load(boot_id, running_version)

    def _load(self, boot_id: str, version: str) -> EngineState:
        state = load_engine_state(self.state_path) or EngineState()
        if not state.aleph_version:
            state.aleph_version = version
        same_boot = state.boot_id == boot_id
        if not (same_boot and state.current_operation == str(UPDATE_STATUS_UPDATED_NEED_REBOOT)):
            # A new boot (or an engine that died mid-update) starts idle, as update_engine does;
            # only "updated, need reboot" survives a restart within the same boot.
            state.current_operation = str(UPDATE_STATUS_IDLE)
            state.progress = 0.0
            state.new_version = ""
            state.new_size = 0
        state.boot_id = boot_id
        state.current_version = version
        self.save(state)
        return state

    def save(self, state: EngineState | None = None, *, force: bool = False) -> None:
        """Write the state file. A write that would only move last_checked_time is skipped when
        the file was written less than `_PERSIST_EVERY` real seconds ago: at a fleet's time factor
        checks come every few real seconds, and the rename is the costliest part of a check."""
        state = state or self.state
        signature = (
            state.current_operation, state.progress, state.new_version, state.new_size,
            state.previous_version, state.aleph_version, state.boot_id, state.current_version,
            state.last_error,
        )  # fmt: skip
        now = time.monotonic()
        if not force and signature == self._saved_signature and now - self._saved_at < _PERSIST_EVERY:
            return
        state.updated_at = self.clock.now()
        save_engine_state(self.state_path, state)
        self._saved_signature, self._saved_at = signature, now

    @property
    def status(self) -> str:
        return self.state.current_operation

    @property
    def snapshot(self) -> EngineSnapshot:
        s = self.state
        return EngineSnapshot(
            s.current_operation, s.progress, s.new_version, s.new_size, s.last_checked_time, s.last_error
        )

    def set(self, status: str | None = None, **changes: Any) -> None:
        if status is not None:
            if status != self.state.current_operation:
                routine = _CHECKING in (status, self.state.current_operation)
                log.log(
                    logging.DEBUG if routine else logging.INFO,
                    "%s%s -> %s",
                    self._log_prefix,
                    self.state.current_operation,
                    status,
                )
            self.state.current_operation = str(status)
        for key, value in changes.items():
            setattr(self.state, key, value)
        if self.state.current_operation != _CHECKING:
            # A check that finds nothing is one write, not two: the few milliseconds of
            # CHECKING_FOR_UPDATE are reported through on_change only.
            self.save()
        self.notify()

    def notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self.snapshot)

    def restart_progress(self) -> None:
        """A new download starts: its first 10 % is saved again."""
        self._last_progress_saved = 0.0

    def progress(self, got: int, total: int) -> None:
        value = min(1.0, got / total) if total else 0.0
        if value - self.state.progress >= _PROGRESS_STEP or value == 1.0:
            self.state.progress = value
            # The file is for humans and `coreroll node status`: 10 % steps are plenty there.
            if value - self._last_progress_saved >= 0.1 or value == 1.0:
                self._last_progress_saved = value
                self.save()
            self.notify()
