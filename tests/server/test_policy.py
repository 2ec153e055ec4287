"""Unit tests of the pure parts: rollout policy, office hours, versions, lifecycle, ranges."""

from __future__ import annotations

import datetime as dt

import pytest

from coreroll.omaha.codes import InstanceStatus
from coreroll.omaha.protocol import OmahaEvent
from coreroll.server.lifecycle import Check, apply_event, classify_check, grant, hold
from coreroll.server.packages import RangeNotSatisfiable, parse_range
from coreroll.server.policy import Policy, PolicyError, RolloutStats, decide, in_office_hours, needs_stats
from coreroll.server.registry import Instance
from coreroll.server.versions import coreos_major, coreos_version, is_newer, promotion_source, version_key

WEDNESDAY_NOON_UTC = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SATURDAY_NOON_UTC = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_unlimited_policy_skips_stats_and_grants() -> None:
    assert not needs_stats(Policy())
    assert decide(Policy(), None, WEDNESDAY_NOON_UTC).grant


def test_disabled_group_refuses_before_anything_else() -> None:
    decision = decide(Policy(updates_enabled=False, office_hours=True), None, SATURDAY_NOON_UTC)
    assert not decision.grant and decision.reason == "updates disabled for the group"


@pytest.mark.parametrize(
    ("granted", "in_progress", "grant"), [(0, 0, True), (1, 1, True), (2, 0, False), (0, 2, False)]
)
def test_per_period_and_concurrency_limits(granted: int, in_progress: int, grant: bool) -> None:
    policy = Policy(max_updates_per_period=2, max_concurrent=2)
    stats = RolloutStats(granted_in_period=granted, in_progress=in_progress)
    assert decide(policy, stats, WEDNESDAY_NOON_UTC).grant is grant


def test_safe_mode_canary_then_normal_limits() -> None:
    policy = Policy(safe_mode=True, max_updates_per_period=10)
    assert decide(policy, RolloutStats(), WEDNESDAY_NOON_UTC).grant  # the canary
    waiting = decide(
        policy, RolloutStats(granted_in_period=1, in_progress=1, attempts_on_version=1), WEDNESDAY_NOON_UTC
    )
    assert not waiting.grant and "canary" in (waiting.reason or "")
    after = RolloutStats(granted_in_period=1, in_progress=0, attempts_on_version=1, completed_on_version=1)
    assert decide(policy, after, WEDNESDAY_NOON_UTC).grant
    busy = RolloutStats(granted_in_period=3, in_progress=3, attempts_on_version=4, completed_on_version=1)
    assert decide(policy, busy, WEDNESDAY_NOON_UTC).grant  # concurrency is back to the policy's


def test_safe_mode_timeout_halts() -> None:
    decision = decide(
        Policy(safe_mode=True), RolloutStats(timed_out=1, attempts_on_version=1), WEDNESDAY_NOON_UTC
    )
    assert not decision.grant and decision.halt_reason and "timed out" in decision.halt_reason


def test_office_hours() -> None:
    assert in_office_hours(WEDNESDAY_NOON_UTC, "UTC")
    assert not in_office_hours(SATURDAY_NOON_UTC, "UTC")
    assert not in_office_hours(WEDNESDAY_NOON_UTC, "America/Los_Angeles")  # 04:00 there
    assert in_office_hours(WEDNESDAY_NOON_UTC, "Europe/Berlin")  # 13:00
    assert not in_office_hours(WEDNESDAY_NOON_UTC, "No/Such_Zone")
    refused = decide(Policy(office_hours=True, timezone="Asia/Tokyo"), None, WEDNESDAY_NOON_UTC)  # 21:00
    assert refused.reason == "outside office hours (Mon-Fri 09:00-17:00 Asia/Tokyo)"


def test_policy_updates_are_validated() -> None:
    updated = Policy().updated({"max_updates_per_period": 5, "safe_mode": True, "timezone": "Europe/Berlin"})
    assert (updated.max_updates_per_period, updated.safe_mode, updated.timezone) == (5, True, "Europe/Berlin")
    for bad, needle in [
        ({"nope": 1}, "nope"),
        ({"safe_mode": 1}, "safe_mode"),
        ({"period_seconds": 0}, "period_seconds"),
        ({"max_updates_per_period": True}, "max_updates_per_period"),
        ({"timezone": "Mars/Base"}, "Mars/Base"),
    ]:
        with pytest.raises(PolicyError, match=needle):
            Policy().updated(bad)


def test_versions() -> None:
    assert coreos_major(dt.date(2013, 7, 13)) == 0
    assert coreos_version(dt.date(2024, 1, 1), 2, 1) == "3824.2.1"
    assert is_newer("10.0.0", "9.9.9") and not is_newer("3975.2.1", "3975.2.1")
    assert version_key("3975.2.1+dev") == version_key("3975.2.1")
    assert promotion_source("beta") == "alpha" and promotion_source("stable") == "beta"
    assert promotion_source("alpha") is None


def _inst(**kw: object) -> Instance:
    return Instance("m", version="1.0.0", **kw)  # type: ignore[arg-type]


def test_lifecycle_events() -> None:
    inst = _inst()
    grant(inst, "2.0.0", 100.0)
    assert inst.status == InstanceStatus.UpdateGranted and inst.update_in_progress
    for pair, status in [((13, 1), "Downloading"), ((14, 1), "Downloaded"), ((3, 1), "Installed")]:
        assert apply_event(inst, OmahaEvent(*pair), 101.0).history is not None
        assert InstanceStatus(inst.status).name == status
    assert apply_event(inst, OmahaEvent(3, 2, None, ""), 102.0).history is None  # every stock check
    assert apply_event(inst, OmahaEvent(3, 2, None, "0.0.0.0"), 102.0).history is None
    inst.version = "2.0.0"
    outcome = apply_event(inst, OmahaEvent(3, 2, None, "1.0.0"), 103.0)
    assert outcome.completed and inst.status == InstanceStatus.Complete and not inst.update_in_progress


def test_an_anonymous_instance_is_done_once_installed() -> None:
    """machineid="": the next boot is a new record, so Installed ends this one's update; it is not
    offered the update again while it waits for its reboot, and it never times out."""
    inst = Instance("anon-" + "0" * 27, version="1.0.0")
    grant(inst, "2.0.0", 0.0)
    for pair in ((13, 1), (14, 1), (3, 1)):
        apply_event(inst, OmahaEvent(*pair), 1.0)
    assert inst.status == InstanceStatus.Installed and not inst.update_in_progress
    assert classify_check(inst, "2.0.0", 10_000.0, 60) is Check.IN_PROGRESS
    named = _inst()
    grant(named, "2.0.0", 0.0)
    apply_event(named, OmahaEvent(3, 1), 1.0)
    assert named.update_in_progress  # a named machine completes with 3/2 under the same id


def test_error_without_update_in_progress_is_only_recorded() -> None:
    inst = _inst()
    outcome = apply_event(inst, OmahaEvent(3, 0, 37), 1.0)
    assert outcome.failure is None and inst.status == InstanceStatus.Undefined
    outcome = apply_event(inst, OmahaEvent(3, 0, 44), 1.0)  # rollback always counts
    assert outcome.failure and inst.status == InstanceStatus.Error


def test_classify_check() -> None:
    inst = _inst()
    assert classify_check(inst, None, 0, 60) is Check.NO_RELEASE
    assert classify_check(inst, "1.0.0", 0, 60) is Check.UP_TO_DATE
    assert classify_check(inst, "2.0.0", 0, 60) is Check.NEEDS_GRANT
    grant(inst, "2.0.0", 0)
    assert classify_check(inst, "2.0.0", 10, 60) is Check.RESERVE
    inst.status = InstanceStatus.Downloading
    assert classify_check(inst, "2.0.0", 10, 60) is Check.IN_PROGRESS
    assert classify_check(inst, "2.0.0", 100, 60) is Check.NEEDS_GRANT  # timed out
    inst.version = "2.0.0"
    assert classify_check(inst, "2.0.0", 10, 60) is Check.LANDED
    failed = _inst()
    grant(failed, "2.0.0", 0)
    assert apply_event(failed, OmahaEvent(3, 0, 9), 1).failure  # one transfer error
    assert classify_check(failed, "2.0.0", 2, 60) is Check.NEEDS_GRANT  # the policy decides again now
    held = _inst()
    assert hold(held, "x") is not None and hold(held, "x") is None  # same reason: no new history


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=50-1000", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # multi-range: the whole file
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=100-", 100)
