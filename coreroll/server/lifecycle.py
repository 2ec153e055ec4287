"""How Omaha events and update checks move an instance through its statuses (pure).

``apply_event(inst, event, now) -> EventOutcome`` mutates ``inst`` for one accepted event:
13/1 Downloading, 14/1 Downloaded, 3/1 and 800/1 Installed, 3/2 with a real ``previousversion``
Complete (3/2 with ``""`` or ``"0.0.0.0"`` is what every stock check carries: nothing changes),
3/0 Error (errorcode 44 = rollback: the machine booted back into the old version; another 3/0
while no update is in progress is only recorded in the history). On an anonymous instance
(``machineid=""``, key ``anon-...``) Installed ends the update in progress: its reboot into the new
version is a new record (a new boot id), so this one would otherwise time out. Any other pair (3/9 "update
deferred", unknown types) is only recorded in the history: it never fails the request.

``classify_check(inst, target, now, timeout) -> Check``: what an update check needs: nothing
(``UP_TO_DATE``, ``IN_PROGRESS``, ``NO_RELEASE``), re-serving the granted offer (``RESERVE``), marking
an update that already landed as Complete (``LANDED``), or a policy decision (``NEEDS_GRANT``).
An instance whose update failed (3/0, e.g. one 503 on the payload) goes to the policy again at its
next check, as in Nebraska (it refuses only Downloading, Downloaded and Installed instances): the
retry is a new grant, counted toward the group's limits (its own earlier grant still counts in the
period), and a failure in safe mode has halted the group anyway.
``grant(inst, version, now)`` / ``hold(inst, reason)`` apply the decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from coreroll.omaha.codes import ErrorCode, InstanceStatus, error_code_name, split_error_code
from coreroll.omaha.protocol import OmahaEvent
from coreroll.server.registry import HistoryEntry, Instance
from coreroll.server.versions import is_newer

IN_FLIGHT = frozenset({InstanceStatus.Downloading, InstanceStatus.Downloaded, InstanceStatus.Installed})
ANONYMOUS_PREFIX = "anon-"  # registry keys of requests with machineid="" (omaha_handler)
ANONYMOUS_INSTALLED = (
    'update installed; machineid="": its next boot checks in as a new instance (a new boot id)'
)
_FRESH_PREVIOUS = ("", "0.0.0.0")


@dataclass(slots=True)
class EventOutcome:
    history: HistoryEntry | None = None
    failure: str | None = None  # set for 3/0: the InstanceUpdateFailed message
    completed: bool = False  # the instance finished an update (3/2 with previousversion)


def _column_int(value: int) -> int | None:
    """``value`` if it fits the history's 32-bit integer columns, else None (it stays in the reason)."""
    return value if 0 <= value < 2**31 else None


def _entry(inst: Instance, ev: OmahaEvent, reason: str | None) -> HistoryEntry:
    return HistoryEntry(inst.status, inst.version, reason, ev.event_type, ev.result, ev.errorcode)


def apply_event(inst: Instance, ev: OmahaEvent, now: float) -> EventOutcome:
    pair = (ev.event_type, ev.result)
    if pair == (3, 2):
        previous = ev.previous_version or ""
        if previous in _FRESH_PREVIOUS:
            return EventOutcome()
        inst.status = InstanceStatus.Complete
        inst.update_in_progress = False
        inst.status_reason = None
        return EventOutcome(_entry(inst, ev, f"updated from {previous} to {inst.version}"), completed=True)
    if pair == (3, 0):
        code = ev.errorcode if ev.errorcode is not None else int(ErrorCode.Error)
        base, _flags = split_error_code(code)
        target = inst.last_update_version or "?"
        if base == ErrorCode.RollbackError:
            reason = (
                f"rollback: still running {inst.version} after rebooting into {target} "
                f"(errorcode {code} {error_code_name(code)})"
            )
        else:
            reason = f"update to {target} failed: errorcode {code} ({error_code_name(code)})"
        if base != ErrorCode.RollbackError and not inst.update_in_progress:
            # e.g. a transfer error from a check while no update was granted: recorded, not a failure
            return EventOutcome(
                _entry(inst, ev, f"error reported, no update in progress: {error_code_name(code)}")
            )
        inst.status = InstanceStatus.Error
        inst.status_reason = reason
        inst.update_in_progress = False
        return EventOutcome(_entry(inst, ev, reason), failure=reason)
    status = {
        (13, 1): InstanceStatus.Downloading,
        (14, 1): InstanceStatus.Downloaded,
        (3, 1): InstanceStatus.Installed,
        (800, 1): InstanceStatus.Installed,
    }.get(pair)
    if status is None:
        code = "" if ev.errorcode is None else f", errorcode {ev.errorcode} ({error_code_name(ev.errorcode)})"
        reason = f"event {ev.event_type}/{ev.result} recorded, no change{code}"
        etype, result = (_column_int(v) for v in (ev.event_type, ev.result))  # hostile: any integer
        return EventOutcome(HistoryEntry(inst.status, inst.version, reason, etype, result, ev.errorcode))
    if inst.status == status:
        return EventOutcome()
    inst.status = status
    inst.status_reason = None
    inst.update_in_progress = True
    if status == InstanceStatus.Installed and is_anonymous(inst.machine_id):
        # Its reboot into the update arrives as another record (a new boot id), so this one can
        # never complete: its part is done, not an update in progress that could time out.
        inst.update_in_progress = False
        inst.status_reason = ANONYMOUS_INSTALLED
    return EventOutcome(_entry(inst, ev, inst.status_reason))


class Check(enum.Enum):
    NO_RELEASE = "no release on the channel"
    UP_TO_DATE = "up to date"
    IN_PROGRESS = "update in progress on the instance"
    RESERVE = "granted earlier: offer again"
    LANDED = "granted update already running"
    NEEDS_GRANT = "needs a policy decision"


def is_anonymous(machine_id: str) -> bool:
    return machine_id.startswith(ANONYMOUS_PREFIX)


def timed_out(inst: Instance, now: float, timeout: float) -> bool:
    granted = inst.last_update_granted_at
    return granted is not None and now - granted > timeout


def classify_check(inst: Instance, target: str | None, now: float, timeout: float) -> Check:
    if inst.update_in_progress and not timed_out(inst, now, timeout):
        if inst.last_update_version and not is_newer(inst.last_update_version, inst.version):
            return Check.LANDED
        if inst.status == InstanceStatus.UpdateGranted:
            return Check.RESERVE
        if inst.status in IN_FLIGHT:
            return Check.IN_PROGRESS
    if inst.status == InstanceStatus.Installed and not inst.update_in_progress:
        return Check.IN_PROGRESS  # an anonymous machine's installed update, waiting for its reboot
    if target is None:
        return Check.NO_RELEASE
    if not is_newer(target, inst.version):
        return Check.UP_TO_DATE
    return Check.NEEDS_GRANT


def grant(inst: Instance, version: str, now: float) -> HistoryEntry:
    inst.status = InstanceStatus.UpdateGranted
    inst.status_reason = None
    inst.update_in_progress = True
    inst.last_update_version = version
    inst.last_update_granted_at = now
    return HistoryEntry(inst.status, inst.version, f"update to {version} granted")


def hold(inst: Instance, reason: str) -> HistoryEntry | None:
    """OnHold with ``reason``; None (no history) when it was already held for the same reason."""
    if inst.status == InstanceStatus.OnHold and inst.status_reason == reason:
        return None
    inst.status = InstanceStatus.OnHold
    inst.status_reason = reason
    inst.update_in_progress = False
    return HistoryEntry(inst.status, inst.version, reason)


def land(inst: Instance) -> HistoryEntry:
    inst.status = InstanceStatus.Complete
    inst.status_reason = None
    inst.update_in_progress = False
    return HistoryEntry(inst.status, inst.version, f"running {inst.version}")
