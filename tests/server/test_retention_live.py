"""Retention on a running server (issue 18 §4): update checks are answered while a large purge runs
(SQLite and PostgreSQL), `coreroll instances --stale` lists what the next run forgets, and /metrics
and the feed say what went. Real uvicorn on 127.0.0.1, real databases."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from coreroll.cli import main
from coreroll.server import schema
from coreroll.server.retention import BATCH
from coreroll.server.runner import RunningServer
from coreroll.server.settings import DAY
from coreroll.server.storage import Storage
from tests.server.conftest import start
from tests.server.helpers import (
    HTTP,
    check_status,
    event_xml,
    get,
    omaha,
    publish,
    read_feed,
    request_xml,
    wait_until,
)
from tests.server.test_retention import NOW, activity_row, machine
from tests.server.test_time import Clock

pytestmark = pytest.mark.slow  # servers on real databases, a purge of thousands of rows

BACKLOG = BATCH * 25  # silent machines, and as many old activity records: 50 batches to delete


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def quiet(
    tmp_path: Path, sqlite_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    """A server whose retention does not run during the test (hourly)."""
    server = start(tmp_path, sqlite_url, clock=clock, prune_interval_seconds=3600.0)
    monkeypatch.setenv("COREROLL_SERVER", server.url)
    yield server
    server.stop()


def _fleet(server: RunningServer, clock: Clock) -> None:
    """a and b go silent for 31 days; c too, but in the middle of an update; d checked in today."""
    publish(server, "4000.0.0")
    for name in ("a", "b"):
        assert check_status(omaha(server.url, request_xml(name, "4000.0.0"))) == "noupdate"
    assert check_status(omaha(server.url, request_xml("c", "3999.0.0"))) == "ok"
    omaha(server.url, event_xml("c", "3999.0.0", 13, 1))  # downloading
    clock.now += 31 * DAY
    omaha(server.url, request_xml("d", "4000.0.0"))


def test_instances_stale_lists_what_the_next_run_forgets(
    quiet: RunningServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    _fleet(quiet, clock)
    assert main(["instances", "--stale"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["a", "b"]
    assert (
        err
        == "2 machines not seen for 30d and not updating: the next retention run forgets them (it runs every 1h)\n"
    )
    assert main(["instances", "--stale", "--json"]) == 0
    assert [i["machine_id"] for i in json.loads(capsys.readouterr().out)] == ["a", "b"]
    # --stale true|false still filters on the stale window (2 h): c is stale too.
    assert main(["instances", "--stale", "true"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["a", "b", "c"]
    with pytest.raises(SystemExit) as usage:
        main(["instances", "--stale", "maybe"])
    assert usage.value.code == 2 and "'maybe': expected true or false" in capsys.readouterr().err
    assert get(quiet, "/api/v1/info")["retention"] == {
        "forget_instances_after_seconds": 30 * DAY, "keep_activity_seconds": 90 * DAY, "interval_seconds": 3600.0,
    }  # fmt: skip


def test_instances_stale_when_forgetting_is_off(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start(tmp_path, sqlite_url, forget_instances_after=0)
    monkeypatch.setenv("COREROLL_SERVER", server.url)
    try:
        omaha(server.url, request_xml("a", "3999.0.0"))
        assert main(["instances", "--stale"]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines()[1:] == []
        assert err == "forgetting machines is off on this server (--forget-instances-after never)\n"
    finally:
        server.stop()


def test_the_server_forgets_on_its_own_and_says_so_in_metrics_and_the_feed(
    tmp_path: Path, sqlite_url: str, clock: Clock
) -> None:
    server = start(tmp_path, sqlite_url, clock=clock, prune_interval_seconds=3600.0)
    try:
        _fleet(server, clock)
        head = get(server, "/api/v1/info")["feed_id"]
    finally:
        server.stop()
    server = start(tmp_path, sqlite_url, clock=clock, prune_interval_seconds=0.05)
    try:
        events = read_feed(server.url, head, until=lambda evs: len(evs) >= 2)
        assert sorted((e["event"], e["data"]["machine_id"], e["data"]["deleted"]) for e in events) == [
            ("instance", "a", True),
            ("instance", "b", True),
        ]
        assert sorted(i["machine_id"] for i in get(server, "/api/v1/instances")["instances"]) == ["c", "d"]
        text = HTTP.get(f"{server.url}/metrics").text
        assert "coreroll_retention_instances_forgotten_total 2.0" in text
        assert "coreroll_retention_last_run_timestamp_seconds" in text
        # a comes back: a new machine to the server, served as any other.
        assert check_status(omaha(server.url, request_xml("a", "4000.0.0"))) == "noupdate"
        assert get(server, "/api/v1/instances/a/history")["history"] == []
    finally:
        server.stop()


# ---- a large purge never holds up update checks ------------------------------------------------------
async def _fill_backlog(db_url: str) -> None:
    """BACKLOG machines silent for 60 days and BACKLOG activity records 120 days old."""
    storage = Storage(db_url, lambda: NOW)
    await storage.start()
    try:
        async with storage.write() as tx:
            await tx.conn.execute(
                insert(schema.instances), [machine(f"old-{n:05d}", 60) for n in range(BACKLOG)]
            )
            await tx.conn.execute(
                insert(schema.activity), [activity_row(120, f"old {n}") for n in range(BACKLOG)]
            )
    finally:
        await storage.close()


def _purged(server: RunningServer) -> int:
    """Instances forgotten plus activity records deleted so far, from /metrics."""
    text = HTTP.get(f"{server.url}/metrics").text
    pattern = r"^coreroll_retention_(?:instances_forgotten|activity_deleted)_total (\S+)$"
    return sum(int(float(value)) for value in re.findall(pattern, text, re.M))


def test_update_checks_are_answered_while_a_large_purge_runs(
    tmp_path: Path, db_url: str, clock: Clock
) -> None:
    asyncio.run(_fill_backlog(db_url))
    server = start(tmp_path, db_url, clock=clock, prune_interval_seconds=0.05)
    try:
        publish(server, "4000.0.0")
        wait_until(lambda: _purged(server) > 0, 60, "the retention task to start on the backlog")
        answers = [check_status(omaha(server.url, request_xml(f"new-{n}", "4000.0.0"))) for n in range(5)]
        # One of the silent machines checks in mid-purge: it stays (or comes back as a new machine).
        answers.append(check_status(omaha(server.url, request_xml(f"old-{BACKLOG - 1:05d}", "4000.0.0"))))
        purged_meanwhile = _purged(server)
        assert answers == ["noupdate"] * 6
        # Answered while the purge went on: the checks did not wait for the backlog to be gone.
        assert purged_meanwhile < 2 * BACKLOG
        wait_until(lambda: _purged(server) >= 2 * BACKLOG - 1, 300, "the purge to finish")
        remaining = get(server, "/api/v1/instances", limit=100)["instances"]
        assert sorted(i["machine_id"] for i in remaining) == sorted(
            [f"old-{BACKLOG - 1:05d}", *(f"new-{n}" for n in range(5))]
        )
        assert not [a for a in get(server, "/api/v1/activity")["activity"] if a["message"].startswith("old ")]
    finally:
        server.stop()
