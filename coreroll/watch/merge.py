"""Merging one machine's facts (etcd report, alive key, lock holders, server instance) into a
NodeRow, and the derived facts (state, stale holders, rollout progress). Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coreroll.watch.parse import NodeReport, opt_str, opt_time
from coreroll.watch.query import version_at_least
from coreroll.watch.views import (
    STATE_ERROR,
    STATE_IDLE,
    STATE_ONHOLD,
    STATE_REBOOT,
    STATE_UNKNOWN,
    STATE_UNREADABLE,
    STATE_UPDATING,
    CommandView,
    HolderView,
    NodeRow,
    RolloutProgress,
)

ACTIVE_STATES = frozenset({STATE_UPDATING, STATE_REBOOT})

_UPDATE_STATE = {
    "UPDATE_STATUS_IDLE": STATE_IDLE,
    "UPDATE_STATUS_CHECKING_FOR_UPDATE": STATE_IDLE,
    "UPDATE_STATUS_UPDATE_AVAILABLE": STATE_UPDATING,
    "UPDATE_STATUS_DOWNLOADING": STATE_UPDATING,
    "UPDATE_STATUS_VERIFYING": STATE_UPDATING,
    "UPDATE_STATUS_FINALIZING": STATE_UPDATING,
    "UPDATE_STATUS_UPDATED_NEED_REBOOT": STATE_REBOOT,
    "UPDATE_STATUS_REPORTING_ERROR_EVENT": STATE_ERROR,
    "UPDATE_STATUS_ATTEMPTING_ROLLBACK": STATE_ERROR,
}
_SERVER_STATE = {
    "Error": STATE_ERROR,
    "OnHold": STATE_ONHOLD,
    "UpdateGranted": STATE_UPDATING,
    "Downloading": STATE_UPDATING,
    "Downloaded": STATE_UPDATING,
    "Installed": STATE_REBOOT,
    "Complete": STATE_IDLE,
    "Undefined": STATE_IDLE,
}


def derive_state(error: str | None, update_status: str | None, server_status: str | None) -> str:
    """The row's one-word state. The node's own report wins over the server's view, except that a
    node idling because the server put it on hold shows `onhold`."""
    if error:
        return STATE_UNREADABLE
    mine = _UPDATE_STATE.get(update_status or "") if update_status else None
    theirs = _SERVER_STATE.get(server_status or "") if server_status else None
    if mine == STATE_IDLE and theirs == STATE_ONHOLD:
        return STATE_ONHOLD
    if mine is not None:
        return mine
    if update_status:
        return STATE_UNKNOWN
    return theirs or STATE_UNKNOWN


def build_row(
    mid: str,
    old: NodeRow | None,
    now: float,
    *,
    report: NodeReport | None,
    error: str | None,
    alive: bool,
    instance: Mapping[str, object] | None,
    commands: Mapping[str, CommandView] | None,
    held: Iterable[str] | None,
    locks_known: bool,
) -> NodeRow | None:
    """The row for `mid`, or None when nothing knows the machine any more. `rev` and
    `status_since` carry over from `old` unless the status changed."""
    in_etcd = report is not None or error is not None or alive or bool(commands)
    if not in_etcd and instance is None:
        return None
    r = report or NodeReport()
    inst = instance or {}
    update_status = r.update_status
    server_status = opt_str(inst, "status")
    state = derive_state(error, update_status, server_status)
    held_groups = tuple(sorted(held or ()))
    if locks_known:
        holds_lock: bool | None = bool(held_groups)
    else:
        holds_lock = r.holds_lock
    checks = [t for t in (r.last_checked, opt_time(inst, "last_check")) if t is not None]
    online: bool | None = True if alive else (False if report is not None or error is not None else None)
    status_key = (state, update_status, server_status)
    since = now
    if old is not None and (old.state, old.update_status, old.server_status) == status_key:
        since = old.status_since if old.status_since is not None else now
    return NodeRow(
        machine_id=mid,
        hostname=r.hostname,
        channel=r.channel or opt_str(inst, "track"),
        version=r.version or opt_str(inst, "version"),
        active_partition=r.active_partition,
        other_version=r.other_version,
        partitions=r.partitions,
        update_status=update_status,
        update_progress=r.update_progress,
        new_version=r.new_version,
        new_size=r.new_size,
        reboot_strategy=r.reboot_strategy,
        lock_group=r.lock_group,
        holds_lock=holds_lock,
        lock_groups_held=held_groups,
        last_check=max(checks) if checks else None,
        online=online,
        boot_id=r.boot_id,
        booted_at=r.booted_at,
        reported_at=r.reported_at,
        group=opt_str(inst, "group"),
        server_status=server_status,
        server_status_reason=opt_str(inst, "status_reason"),
        server_version=opt_str(inst, "version"),
        server_channel=opt_str(inst, "track"),
        ip=opt_str(inst, "ip"),
        update_in_progress=bool(inst["update_in_progress"]) if "update_in_progress" in inst else None,
        server_stale=bool(inst["stale"]) if "stale" in inst else None,
        state=state,
        status_since=since,
        error=error,
        in_etcd=in_etcd,
        in_server=instance is not None,
        pending_commands=tuple(commands[k] for k in sorted(commands)) if commands else (),
        rev=old.rev if old is not None else 0,
    )


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


def holder_view(
    holder: str,
    since: tuple[float, bool] | None,
    row: NodeRow | None,
    now: float,
    stale_after: float,
) -> HolderView:
    """A lock holder, flagged stale when it is offline, unknown to the fleet, or has held too long."""
    at, exact = since if since is not None else (None, False)
    reasons: list[str] = []
    if row is None:
        reasons.append("unknown to the fleet")
    elif row.online is False:
        reasons.append("offline")
    if at is not None and now - at > stale_after:
        reasons.append(f"held for {'over ' if not exact else ''}{format_duration(now - at)}")
    return HolderView(
        machine_id=holder,
        since=at,
        since_exact=exact,
        known=row is not None,
        online=row.online if row is not None else None,
        stale=bool(reasons),
        stale_reason=", ".join(reasons) or None,
    )


def rollout(name: str, version: str | None, rows: Iterable[NodeRow]) -> RolloutProgress:
    total = done = updating = failed = on_hold = 0
    for row in rows:
        total += 1
        if version_at_least(row.version, version):
            done += 1
        elif row.state in ACTIVE_STATES:
            updating += 1
        elif row.state in (STATE_ERROR, STATE_UNREADABLE):
            failed += 1
        elif row.state == STATE_ONHOLD:
            on_hold += 1
    return RolloutProgress(name, version, total, done, updating, failed, on_hold)
