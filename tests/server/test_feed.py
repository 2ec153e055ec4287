"""The live feed (SSE): every committed change, strictly increasing ids, Last-Event-ID resumes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from coreroll.server.runner import RunningServer
from tests.server.conftest import start
from tests.server.helpers import call, event_xml, get, omaha, publish, read_feed, request_xml, wait_until

pytestmark = pytest.mark.slow


def _drive_rollout(server: RunningServer) -> None:
    publish(server, "4000.0.0")
    omaha(server.url, request_xml("m1", "3999.0.0"))
    omaha(server.url, event_xml("m1", "3999.0.0", 13, 1))
    call(server, "POST", "/api/v1/groups/beta/pause")


def test_feed_carries_every_change_in_order(server: RunningServer) -> None:
    start = get(server, "/api/v1/info")["feed_id"]
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(
        target=read_feed, kwargs={"url": server.url, "last_id": start, "sink": seen,
                                  "until": lambda evs: evs[-1]["data"].get("kind") == "GroupPaused"},
    )  # fmt: skip
    reader.start()
    _drive_rollout(server)
    reader.join(timeout=15)
    assert not reader.is_alive()
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids)) and ids[0] == start + 1
    assert ids == list(range(start + 1, start + 1 + len(ids)))  # SQLite/PG sequences: no gaps here
    kinds = [
        (e["event"], e["data"].get("kind") or e["data"].get("status") or e["data"].get("name")) for e in seen
    ]
    assert any(e["event"] == "release" and e["data"]["version"] == "4000.0.0" for e in seen)
    assert ("activity", "ReleasePublished") in kinds and ("activity", "ChannelUpdated") in kinds
    assert ("channel", "stable") in kinds
    assert ("instance", "UpdateGranted") in kinds and ("instance", "Downloading") in kinds
    assert ("activity", "RolloutStarted") in kinds and ("activity", "GroupPaused") in kinds
    downloading = next(e for e in seen if e["event"] == "instance" and e["data"]["status"] == "Downloading")
    current = {k: v for k, v in get(server, "/api/v1/instances/m1").items() if k != "history"}
    assert downloading["data"] == current  # the feed carries whole objects, shaped as the read API


def test_last_event_id_resume_misses_nothing(server: RunningServer) -> None:
    start = get(server, "/api/v1/info")["feed_id"]
    _drive_rollout(server)
    everything = read_feed(
        server.url, start, until=lambda evs: evs[-1]["id"] >= get(server, "/api/v1/info")["feed_id"]
    )
    half = everything[len(everything) // 2]["id"]
    rest = read_feed(server.url, half, until=lambda evs: evs[-1]["id"] >= everything[-1]["id"])
    assert [e["id"] for e in rest] == [e["id"] for e in everything if e["id"] > half]
    assert rest == [e for e in everything if e["id"] > half]


def test_without_last_event_id_the_feed_starts_at_the_head(server: RunningServer) -> None:
    _drive_rollout(server)
    head = get(server, "/api/v1/info")["feed_id"]
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(
        target=read_feed, kwargs={"url": server.url, "sink": seen, "until": lambda evs: True}
    )
    reader.start()
    # The reader subscribes asynchronously: keep producing changes until it has seen one.
    wait_until(lambda: call(server, "POST", "/api/v1/groups/alpha/pause") and seen, what="a live feed event")
    reader.join(timeout=10)
    assert seen[0]["id"] > head


def test_snapshot_then_feed(server: RunningServer) -> None:
    _drive_rollout(server)
    snap = get(server, "/api/v1/snapshot")
    assert snap["feed_id"] == get(server, "/api/v1/info")["feed_id"]
    assert [c["name"] for c in snap["channels"]] == ["alpha", "beta", "stable"]
    assert {g["id"] for g in snap["groups"]} == {"alpha", "beta", "stable"}
    assert [i["machine_id"] for i in snap["instances"]] == ["m1"]
    assert snap["releases"][0]["version"] == "4000.0.0"
    assert snap["activity"][-1]["kind"] == "GroupPaused"
    omaha(server.url, event_xml("m1", "3999.0.0", 14, 1))
    after = read_feed(server.url, snap["feed_id"], until=lambda evs: evs[-1]["event"] == "instance")
    assert after[-1]["data"]["status"] == "Downloaded"


def test_resuming_from_a_pruned_id_says_reset(tmp_path: Path, sqlite_url: str) -> None:
    server = start(tmp_path, sqlite_url, feed_retention=5, prune_interval_seconds=0.05)
    try:
        for group in ("alpha", "beta", "stable") * 3:
            call(server, "POST", f"/api/v1/groups/{group}/pause")
        head = get(server, "/api/v1/info")["feed_id"]

        def first_event_after_1() -> dict[str, Any]:
            return read_feed(server.url, 1, until=lambda evs: True)[0]

        wait_until(lambda: first_event_after_1()["event"] == "reset", what="pruning to drop id 2")
        first = first_event_after_1()
        assert first["data"]["feed_id"] == head and "snapshot" in first["data"]["reason"]
        call(server, "POST", "/api/v1/groups/alpha/resume")
        after = read_feed(server.url, head, until=lambda evs: True)
        assert after[0]["id"] == head + 1
    finally:
        server.stop()
