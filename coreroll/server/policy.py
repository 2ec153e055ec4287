"""Rollout policy, as Nebraska has it (pure: no I/O, no clock of its own).

- ``Policy``: updates_enabled, max_updates_per_period, period_seconds, max_concurrent,
  update_timeout_seconds, safe_mode, office_hours, timezone. ``Policy.to_json()`` /
  ``Policy.updated(changes)`` (validates a partial JSON update, raises ``PolicyError`` naming the key).
- ``RolloutStats``: counts over a group's instances for the version being rolled out.
- ``needs_stats(policy)``: False on the "unlimited" fast path (Nebraska's 900000), so the hot path
  skips the stats queries.
- ``decide(policy, stats, now) -> Decision(grant, reason, halt_reason)``: grant or refuse one update
  check. A refusal becomes ``noupdate`` + OnHold with ``reason``; ``halt_reason`` also pauses the group.
- ``in_office_hours(now, timezone)``: Mon-Fri 09:00-17:00 local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UNLIMITED = 900_000  # Nebraska skips the stats at or above this
MAX_TIMEZONE = 64  # characters (the groups.timezone column); IANA names are at most ~32


class PolicyError(ValueError):
    """A policy change that names an unknown key or has a value of the wrong type or range."""


@dataclass(frozen=True, slots=True)
class Policy:
    updates_enabled: bool = True
    max_updates_per_period: int = 999_999
    period_seconds: int = 60
    max_concurrent: int = 999_999
    update_timeout_seconds: int = 3600
    safe_mode: bool = False
    office_hours: bool = False
    timezone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> Policy:
        """This policy with ``changes`` applied; every key and value checked first."""
        if not isinstance(changes, dict):
            raise PolicyError("policy: expected a JSON object")
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise PolicyError(f"policy: unknown key {key!r} (known: {', '.join(known)})")
            kind = type(getattr(self, key))
            if kind is bool:
                if not isinstance(value, bool):
                    raise PolicyError(f"policy.{key}: expected true or false, got {value!r}")
            elif kind is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise PolicyError(f"policy.{key}: expected an integer, got {value!r}")
                low = 0 if key == "max_concurrent" else 1
                if not low <= value <= 2**31 - 1:
                    raise PolicyError(f"policy.{key}: must be between {low} and {2**31 - 1}, got {value}")
            elif key == "timezone":
                if isinstance(value, str) and len(value) > MAX_TIMEZONE:
                    raise PolicyError(f"policy.timezone: at most {MAX_TIMEZONE} characters, got {len(value)}")
                if not isinstance(value, str) or not valid_timezone(value):
                    raise PolicyError(f"policy.timezone: unknown time zone {value!r} (use an IANA name)")
            clean[key] = value
        return replace(self, **clean)


@dataclass(frozen=True, slots=True)
class RolloutStats:
    granted_in_period: int = 0  # instances granted within the last period_seconds
    in_progress: int = 0  # granted, not finished, not timed out
    timed_out: int = 0  # granted, not finished, older than update_timeout_seconds
    attempts_on_version: int = 0  # instances ever granted the target version
    completed_on_version: int = 0  # instances that completed the update to the target version


@dataclass(frozen=True, slots=True)
class Decision:
    grant: bool
    reason: str | None = None  # why not (stored as the instance's status_reason)
    halt_reason: str | None = None  # when set, the group is paused with this reason


def valid_timezone(name: str) -> bool:
    if len(name) > MAX_TIMEZONE:  # a long name makes ZoneInfo raise OSError or RecursionError
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def in_office_hours(now: dt.datetime, timezone: str) -> bool:
    """Mon-Fri, 09:00 <= local time < 17:00 in ``timezone`` (an unknown zone is never in hours)."""
    if not valid_timezone(timezone):
        return False
    local = now.astimezone(ZoneInfo(timezone))
    return local.weekday() < 5 and 9 <= local.hour < 17


def needs_stats(policy: Policy) -> bool:
    return policy.safe_mode or policy.max_updates_per_period < UNLIMITED or policy.max_concurrent < UNLIMITED


def decide(policy: Policy, stats: RolloutStats | None, now: dt.datetime) -> Decision:
    """Grant or hold one update. ``stats`` may be None only when ``needs_stats(policy)`` is False."""
    if not policy.updates_enabled:
        return Decision(False, "updates disabled for the group")
    if policy.office_hours and not in_office_hours(now, policy.timezone):
        return Decision(False, f"outside office hours (Mon-Fri 09:00-17:00 {policy.timezone})")
    if not needs_stats(policy):
        return Decision(True)
    if stats is None:
        raise ValueError("decide: this policy needs rollout stats")
    if policy.safe_mode and stats.timed_out > 0:
        reason = f"safe mode: {stats.timed_out} update(s) timed out after {policy.update_timeout_seconds} s"
        return Decision(False, reason, halt_reason=reason)
    per_period = policy.max_updates_per_period
    concurrent = policy.max_concurrent
    if policy.safe_mode and stats.completed_on_version == 0:
        # One canary at a time until one instance has completed the update; after a failed canary
        # (which halts the group) and a resume, the next machine becomes the canary.
        if stats.in_progress > 0:
            return Decision(False, "safe mode: waiting for the canary to complete")
        concurrent = min(concurrent, 1)
    if stats.granted_in_period >= per_period:
        return Decision(False, f"max updates per period reached ({per_period} per {policy.period_seconds} s)")
    if stats.in_progress >= concurrent:
        return Decision(False, f"max concurrent updates reached ({concurrent})")
    return Decision(True)
