"""Rollout policy over HTTP: rate limits, concurrency, safe mode canary, halting, pause/resume,
office hours. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from coreroll.server.policy import in_office_hours
from coreroll.server.runner import RunningServer
from tests.server.helpers import (
    activity_kinds,
    call,
    check_status,
    event_xml,
    get,
    instance,
    omaha,
    publish,
    request_xml,
)

pytestmark = pytest.mark.slow

OLD, NEW = "3999.0.0", "4000.0.0"


def set_policy(server: RunningServer, **policy: object) -> dict:
    reply = call(server, "PUT", "/api/v1/groups/stable/policy", policy)
    assert reply.status_code == 200, reply.text
    return reply.json()


def check(server: RunningServer, machine: str, version: str = OLD, previous: str = "") -> str:
    return check_status(omaha(server.url, request_xml(machine, version, previous=previous)))


def complete(server: RunningServer, machine: str) -> None:
    for etype in (13, 14, 3):
        omaha(server.url, event_xml(machine, OLD, etype, 1))
    assert check(server, machine, NEW, previous=OLD) == "noupdate"
    assert instance(server, machine)["status"] == "Complete"


def test_max_updates_per_period_grants_exactly_n(server: RunningServer) -> None:
    publish(server, NEW)
    set_policy(server, max_updates_per_period=3, period_seconds=3600)
    machines = [f"{i:032x}" for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:  # concurrent checks must not over-grant
        answers = list(pool.map(lambda m: check(server, m), machines))
    assert answers.count("ok") == 3 and answers.count("noupdate") == 7
    held = get(server, "/api/v1/instances", status="OnHold")
    assert held["total"] == 7
    assert {i["status_reason"] for i in held["instances"]} == {
        "max updates per period reached (3 per 3600 s)"
    }
    assert get(server, "/api/v1/instances", status="UpdateGranted")["total"] == 3
    # Held machines keep getting noupdate; re-checking writes nothing new.
    head = get(server, "/api/v1/info")["feed_id"]
    held_id = held["instances"][0]["machine_id"]
    assert check(server, held_id) == "noupdate"
    assert get(server, "/api/v1/info")["feed_id"] == head
    assert len(instance(server, held_id)["history"]) == 1


def test_max_concurrent_frees_a_slot_when_an_update_completes(server: RunningServer) -> None:
    publish(server, NEW)
    set_policy(server, max_concurrent=2)
    assert [check(server, m) for m in ("a1", "a2", "a3")] == ["ok", "ok", "noupdate"]
    assert instance(server, "a3")["status_reason"] == "max concurrent updates reached (2)"
    complete(server, "a1")
    assert check(server, "a3") == "ok"
    assert instance(server, "a3")["status"] == "UpdateGranted"


def test_simultaneous_checks_from_one_machine_grant_it_once(server: RunningServer) -> None:
    """Eight checks from X at once with max concurrent 1: X is granted once and stays granted (a
    refusal computed from X's older state must not overwrite the grant), so Y is refused."""
    publish(server, NEW)
    set_policy(server, max_concurrent=1)
    start = threading.Barrier(8)

    def at_once(_: int) -> str:
        start.wait(timeout=10)
        return check(server, "x")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(at_once, range(8)))
    x = instance(server, "x")
    assert x["status"] == "UpdateGranted"
    assert [h["status"] for h in x["history"]] == ["UpdateGranted"]
    assert [check(server, "y") for _ in range(3)] == ["noupdate"] * 3
    assert instance(server, "y")["status_reason"] == "max concurrent updates reached (1)"
    in_flight = get(server, "/api/v1/instances", status="UpdateGranted")["instances"]
    assert [i["machine_id"] for i in in_flight] == ["x"]
    assert check(server, "x") == "ok"
    assert answers == ["ok"] * 8  # one grant, re-served to the other seven


def test_safe_mode_grants_one_canary_then_the_rest_after_it_completes(server: RunningServer) -> None:
    publish(server, NEW)
    set_policy(server, safe_mode=True, max_updates_per_period=100, period_seconds=3600)
    assert check(server, "canary") == "ok"
    assert [check(server, m) for m in ("b1", "b2")] == ["noupdate", "noupdate"]
    assert instance(server, "b1")["status"] == "OnHold"
    assert "canary" in instance(server, "b1")["status_reason"]
    complete(server, "canary")
    assert [check(server, m) for m in ("b1", "b2", "b3")] == ["ok", "ok", "ok"]


def test_a_failure_in_safe_mode_halts_the_group(server: RunningServer) -> None:
    publish(server, NEW)
    set_policy(server, safe_mode=True)
    assert check(server, "canary") == "ok"
    omaha(server.url, event_xml("canary", OLD, 13, 1))
    omaha(server.url, event_xml("canary", OLD, 3, 0, errorcode=12))
    group = get(server, "/api/v1/groups/stable")
    assert group["policy"]["updates_enabled"] is False
    assert "canary" in group["halted_reason"] and "DownloadPayloadVerificationError" in group["halted_reason"]
    assert group["rollout_in_progress"] is False
    assert activity_kinds(server)[-2:] == ["InstanceUpdateFailed", "RolloutFailed"]
    assert check(server, "other") == "noupdate"
    assert instance(server, "other")["status_reason"] == "updates disabled for the group"
    # Resuming clears the halt; the next machine becomes the new canary.
    resumed = call(server, "POST", "/api/v1/groups/stable/resume").json()
    assert resumed["halted_reason"] is None and resumed["policy"]["updates_enabled"] is True
    assert check(server, "other") == "ok"


def fail(server: RunningServer, machine: str, errorcode: int = 9) -> None:
    """The node started downloading, then the download failed (9: DownloadTransferError, one 503)."""
    omaha(server.url, event_xml(machine, OLD, 13, 1))
    omaha(server.url, event_xml(machine, OLD, 3, 0, errorcode=errorcode))
    assert instance(server, machine)["status"] == "Error"


def test_a_failed_update_is_offered_again_at_the_next_check(server: RunningServer) -> None:
    """As Nebraska does: not an hour (the update timeout) of noupdate after one transfer error."""
    publish(server, NEW)
    assert check(server, "n1") == "ok"
    fail(server, "n1")
    assert check(server, "n1") == "ok"
    assert instance(server, "n1")["status"] == "UpdateGranted"
    complete(server, "n1")


def test_a_retry_after_a_failure_counts_toward_the_limits(server: RunningServer) -> None:
    publish(server, NEW)
    set_policy(server, max_concurrent=1)
    assert [check(server, m) for m in ("n1", "n2")] == ["ok", "noupdate"]
    fail(server, "n1")  # n1's slot is free again: the next machine to check takes it
    assert [check(server, m) for m in ("n2", "n1")] == ["ok", "noupdate"]
    assert instance(server, "n1")["status_reason"] == "max concurrent updates reached (1)"
    # Per period, Nebraska counts machines by their last grant (last_update_granted_ts): n1's own
    # earlier grant fills the period's second place, its retry then takes that place, not another.
    set_policy(server, max_concurrent=999_999, max_updates_per_period=2, period_seconds=3600)
    complete(server, "n2")
    assert check(server, "n1") == "noupdate"
    assert instance(server, "n1")["status_reason"] == "max updates per period reached (2 per 3600 s)"
    set_policy(server, max_updates_per_period=3)
    assert [check(server, m) for m in ("n1", "n3", "n4")] == ["ok", "ok", "noupdate"]


def test_pause_and_resume(server: RunningServer) -> None:
    publish(server, NEW)
    paused = call(server, "POST", "/api/v1/groups/stable/pause").json()
    assert paused["policy"]["updates_enabled"] is False
    assert check(server, "c1") == "noupdate"
    assert instance(server, "c1")["status"] == "OnHold"
    call(server, "POST", "/api/v1/groups/stable/resume")
    assert check(server, "c1") == "ok"
    assert activity_kinds(server)[-3:] == ["GroupPaused", "GroupResumed", "RolloutStarted"]


def test_office_hours_follow_the_time_zone(server: RunningServer) -> None:
    publish(server, NEW)
    now = dt.datetime.now(dt.UTC)
    zones = [f"Etc/GMT{offset:+d}" if offset else "UTC" for offset in range(-12, 13)]
    outside = next(z for z in zones if not in_office_hours(now, z))
    set_policy(server, office_hours=True, timezone=outside)
    assert check(server, "d1") == "noupdate"
    assert instance(server, "d1")["status_reason"] == f"outside office hours (Mon-Fri 09:00-17:00 {outside})"
    inside = next((z for z in zones if in_office_hours(now, z)), None)
    if inside is not None:  # somewhere on Earth it is a weekday 09:00-17:00 unless it is a weekend everywhere
        set_policy(server, timezone=inside)
        assert check(server, "d1") == "ok"
