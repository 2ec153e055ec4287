"""Time-driven behaviour with the server on a controlled clock (no sleeps): stale instances, the
update timeout, the rate-limit period, office hours; plus the instance cap, /healthz and /metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.omaha.client import build_request
from coreroll.omaha.protocol import OmahaEvent
from coreroll.server.omaha_handler import anonymous_machine_key
from coreroll.server.runner import RunningServer
from coreroll.server.settings import ServerSettings
from tests.server.conftest import start
from tests.server.helpers import (
    HTTP,
    activity_kinds,
    call,
    check_status,
    event_xml,
    get,
    instance,
    omaha,
    publish,
    request_xml,
    wait_until,
)

pytestmark = pytest.mark.slow

MONDAY_0800_UTC = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_0800_UTC)


@pytest.fixture
def timed(tmp_path: Path, sqlite_url: str, clock: Clock) -> Iterator[RunningServer]:
    server = start(tmp_path, sqlite_url, clock=clock, stale_window_seconds=3600.0, instance_cap=5)
    yield server
    server.stop()


def check(server: RunningServer, machine: str, version: str = "3999.0.0") -> str:
    return check_status(omaha(server.url, request_xml(machine, version)))


def test_instances_go_stale_when_not_seen(timed: RunningServer, clock: Clock) -> None:
    check(timed, "s1")
    clock.now += 1800
    check(timed, "s2")
    assert [i["stale"] for i in get(timed, "/api/v1/instances")["instances"]] == [False, False]
    clock.now += 2000  # s1 last seen 3800 s ago, s2 2000 s ago
    assert instance(timed, "s1")["stale"] is True and instance(timed, "s2")["stale"] is False
    assert [i["machine_id"] for i in get(timed, "/api/v1/instances", stale="true")["instances"]] == ["s1"]
    assert [i["machine_id"] for i in get(timed, "/api/v1/instances", stale="false")["instances"]] == ["s2"]
    assert get(timed, "/api/v1/info")["stale_window_seconds"] == 3600.0


def test_rate_limit_period_expires(timed: RunningServer, clock: Clock) -> None:
    publish(timed, "4000.0.0")
    call(timed, "PUT", "/api/v1/groups/stable/policy", {"max_updates_per_period": 1, "period_seconds": 600})
    assert [check(timed, m) for m in ("p1", "p2")] == ["ok", "noupdate"]
    clock.now += 599
    assert check(timed, "p2") == "noupdate"
    clock.now += 2
    assert check(timed, "p2") == "ok"


def test_update_timeout_lets_a_stuck_instance_be_granted_again(timed: RunningServer, clock: Clock) -> None:
    publish(timed, "4000.0.0")
    call(timed, "PUT", "/api/v1/groups/stable/policy", {"update_timeout_seconds": 900, "max_concurrent": 1})
    assert check(timed, "t1") == "ok"
    omaha(timed.url, event_xml("t1", "3999.0.0", 13, 1))
    assert check(timed, "t2") == "noupdate"  # t1 holds the only slot
    assert check(timed, "t1") == "noupdate"  # still downloading
    clock.now += 901  # t1 timed out: it no longer holds the slot, and may be granted again
    assert check(timed, "t2") == "ok"
    assert instance(timed, "t2")["status"] == "UpdateGranted"


def test_office_hours_on_the_server_clock(timed: RunningServer, clock: Clock) -> None:
    publish(timed, "4000.0.0")
    call(timed, "PUT", "/api/v1/groups/stable/policy", {"office_hours": True, "timezone": "Europe/Berlin"})
    assert check(timed, "o1") == "ok"  # Monday 08:00 UTC is 09:00 in Berlin (CET): office hours
    clock.now -= 3600  # Monday 07:00 UTC = 08:00 in Berlin: before office hours
    assert check(timed, "o2") == "noupdate"
    assert (
        instance(timed, "o2")["status_reason"] == "outside office hours (Mon-Fri 09:00-17:00 Europe/Berlin)"
    )
    clock.now += 3 * 3600  # 11:00 in Berlin
    assert check(timed, "o2") == "ok"


def test_instance_cap(timed: RunningServer) -> None:
    for i in range(5):
        check(timed, f"c{i}")
    app = omaha(timed.url, request_xml("c5", "3999.0.0")).find("app")
    assert app.get("status") == "error-instanceRegistrationFailed"
    assert get(timed, "/api/v1/instances")["total"] == 5
    assert check(timed, "c0") == "noupdate"  # known machines are still served


def test_healthz_and_metrics(timed: RunningServer) -> None:
    assert HTTP.get(f"{timed.url}/healthz").json() == {"status": "ok", "db": "ok"}
    publish(timed, "4000.0.0")
    check(timed, "m1")
    HTTP.post(f"{timed.url}/v1/update/", content=b"<nope")
    text = HTTP.get(f"{timed.url}/metrics").text
    assert 'coreroll_omaha_requests_total{result="ok"} 1.0' in text
    assert 'coreroll_omaha_requests_total{result="bad_request"} 1.0' in text
    assert 'coreroll_instances{group="stable",status="UpdateGranted"} 1.0' in text
    assert 'coreroll_updates_granted_total{group="stable"} 1.0' in text
    assert "coreroll_omaha_request_seconds_bucket" in text


def test_recheck_with_nothing_changed_writes_nothing_until_last_check_is_old(
    timed: RunningServer, clock: Clock
) -> None:
    check(timed, "h1")
    head = get(timed, "/api/v1/info")["feed_id"]
    first_seen = instance(timed, "h1")["last_check"]
    for _ in range(3):
        clock.now += 60
        assert check(timed, "h1") == "noupdate"
    assert get(timed, "/api/v1/info")["feed_id"] == head  # no write, no feed event
    assert instance(timed, "h1")["last_check"] == first_seen
    clock.now += 181  # 301 s after the stored last_check: refresh it
    check(timed, "h1")
    assert get(timed, "/api/v1/info")["feed_id"] == head + 1
    assert instance(timed, "h1")["last_check"] != first_seen
    # A changed attribute (here the version) is written at once.
    clock.now += 1
    check(timed, "h1", version="3999.0.1")
    assert instance(timed, "h1")["version"] == "3999.0.1"


def test_history_and_activity_older_than_the_retention_are_deleted(
    tmp_path: Path, sqlite_url: str, clock: Clock
) -> None:
    server = start(tmp_path, sqlite_url, clock=clock, history_days=30, prune_interval_seconds=0.05)
    try:
        publish(server, "4000.0.0")
        assert check(server, "old") == "ok"  # granted: a history entry at day 0
        assert get(server, "/api/v1/instances/old/history")["history"] != []
        call(server, "POST", "/api/v1/groups/beta/pause")  # activity at day 0
        clock.now += 31 * 86400
        assert check(server, "new") == "ok"
        call(server, "POST", "/api/v1/groups/beta/resume")  # activity at day 31

        def kinds() -> list[str]:
            return [a["kind"] for a in get(server, "/api/v1/activity")["activity"]]

        wait_until(lambda: "GroupPaused" not in kinds(), what="day-0 activity to be pruned")
        assert "GroupResumed" in kinds()
        assert get(server, "/api/v1/instances/old/history")["history"] == []
        assert get(server, "/api/v1/instances/new/history")["history"] != []
        assert instance(server, "old")["machine_id"] == "old"  # the instance itself stays
    finally:
        server.stop()


def test_a_negative_history_retention_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--history-days -1: expected 0"):
        ServerSettings(data_dir=tmp_path, history_days=-1)


def anonymous(version: str, bootid: str, *, updatecheck: bool = True, events: list[OmahaEvent]) -> bytes:
    """update_engine's request from a machine with an empty machineid (its boot id differs per boot)."""
    return build_request(version=version, track="stable", machineid="", bootid=bootid, oem="ami",
                         oemversion="0.1", alephversion="3510.2.0", board="amd64-usr", ping=True,
                         updatecheck=updatecheck, events=events, coreroll_agent=True)  # fmt: skip


def test_an_anonymous_machine_that_rebooted_into_the_update_never_times_out(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    """machineid="": after the reboot the node is a new record (new boot id); the old record, left
    Installed, is done, not an update in progress that times out and halts a safe-mode group."""
    server = start(tmp_path, db_url, clock=clock)
    try:
        publish(server, "4000.0.0")
        call(
            server, "PUT", "/api/v1/groups/stable/policy", {"safe_mode": True, "update_timeout_seconds": 900}
        )
        first, second = "{00000000-0000-4000-8000-00000000b001}", "{00000000-0000-4000-8000-00000000b002}"
        fresh = [OmahaEvent(3, 2, None, "0.0.0.0")]
        assert check_status(omaha(server.url, anonymous("3999.0.0", first, events=fresh))) == "ok"
        for etype in (13, 14, 3):
            omaha(server.url, anonymous("3999.0.0", first, updatecheck=False, events=[OmahaEvent(etype, 1)]))
        booted = [OmahaEvent(3, 2, None, "3999.0.0")]
        assert check_status(omaha(server.url, anonymous("4000.0.0", second, events=booted))) == "noupdate"
        old, new = (instance(server, anonymous_machine_key(b, "127.0.0.1")) for b in (first, second))
        assert new["status"] == "Complete" and new["version"] == "4000.0.0"
        assert old["status"] == "Installed" and old["update_in_progress"] is False
        assert "new instance" in old["status_reason"]
        # The only machine of the group is on the new version: the rollout finished.
        assert "RolloutFinished" in activity_kinds(server)
        clock.now += 901  # past the update timeout since the old record's grant
        assert check(server, "late") == "ok"
        group = get(server, "/api/v1/groups/stable")
        assert group["policy"]["updates_enabled"] is True and group["halted_reason"] is None
    finally:
        server.stop()
