"""Values from outside that used to raise inside the dashboard's model (and so end the app): a
version that is not a version ("1.²"), numbers without bounds, NaN, times past year 9999, nesting
where a string belongs. Fed through the real EtcdSource (real etcd) and FeedSource (a real server,
and the mock transport for what a real server never sends)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coreroll.server.runner import RunningServer
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.parse import TIME_MAX, TIME_MIN
from coreroll.watch.query import SORT_KEYS, version_at_least, version_key
from coreroll.watch.updates import UpdateBuffer
from coreroll.wire.keys import airlock_group_key, audit_key
from tests.watch.helpers import check_in, publish, status_doc, wait_model
from tests.watch.test_etcd_source import STATUS, Running
from tests.watch.test_feed_protocol import FakeServer, snapshot

# --- version order ---------------------------------------------------------------------------

VERSIONS = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}([-+][a-z0-9.]{0,5})?", fullmatch=True),
    st.sampled_from(["1.²", "١٢.٣", "1." + "9" * 30, "", "0.0.0.0", "3815.2.0+dev", "1.0", "1.00", "1-0"]),
)


@pytest.mark.slow
@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(VERSIONS, max_size=12))
def test_versions_have_a_total_order_whatever_the_strings(versions: list[str]) -> None:
    ordered = sorted(versions, key=version_key)  # raised ValueError on "1.²" before
    shuffled = list(versions)
    random.Random(0).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ordered  # deterministic: no ties between different strings
    assert len({version_key(v) for v in versions}) == len(set(versions))


def test_versions_compare_numerically_and_the_rest_sorts_after() -> None:
    versions = ["zzz", "3815.2.10", "1.²", "3815.2.9", "1." + "9" * 30, "4000.0.0"]
    assert sorted(versions, key=version_key) == [
        "3815.2.9",
        "3815.2.10",
        "4000.0.0",
        "1." + "9" * 30,
        "1.²",
        "zzz",
    ]
    assert version_at_least("3815.2.10", "3815.2.9")
    assert not version_at_least("1.²", "1.0")  # not a version: never counted as rolled out
    assert not version_at_least("zzz", "3815.2.9") and version_at_least("1.²", "1.²")
    assert sorted(["1.00", "1.0", "1-0"], key=version_key) == ["1-0", "1.0", "1.00"]  # ties by text


# --- node status in etcd ---------------------------------------------------------------------


def _doc(mid: str) -> dict[str, Any]:
    return status_doc(mid, hostname=f"host-{mid}")


def _with(mid: str, path: str, value: Any) -> bytes:
    doc = _doc(mid)
    *parents, last = path.split(".")
    target: Any = doc
    for name in parents:
        target = target[int(name)] if name.isdecimal() else target[name]
    target[last] = value
    return json.dumps(doc).encode()  # allow_nan: NaN and Infinity go out as Python's json reads them


# machine id -> (raw status, the field the row's error names; None: the row is readable)
STATUSES: dict[str, tuple[bytes, str | None]] = {
    "superscript": (_with("superscript", "version", "1.²"), None),
    "arabic": (_with("arabic", "version", "١٢.٣"), None),
    "long-version": (_with("long-version", "version", "1." + "9" * 5000), None),
    "other-usr": (_with("other-usr", "partitions.1.version", "2.²"), None),
    "nan-progress": (_with("nan-progress", "update.progress", float("nan")), "update.progress"),
    "big-progress": (_with("big-progress", "update.progress", 1e308), "update.progress"),
    "int-progress": (_with("int-progress", "update.progress", 10**400), "update.progress"),
    "inf-check": (_with("inf-check", "update.last_checked_time", float("inf")), "update.last_checked_time"),
    "huge-check": (_with("huge-check", "update.last_checked_time", 10**400), "update.last_checked_time"),
    "year-10000": (_with("year-10000", "booted_at", "9999-12-31T23:59:59-14:00"), "booted_at"),
    "far-report": (_with("far-report", "reported_at", 1e300), "reported_at"),
    "big-size": (_with("big-size", "update.new_size", 10**30), "update.new_size"),
    "big-priority": (_with("big-priority", "partitions.0.priority", 10**30), "partitions[0].priority"),
    "nested-host": (_with("nested-host", "hostname", {"a": [1, {"b": None}]}), "hostname"),
    "deep": (b"[" * 100_000, "nested too deeply"),
    "digits": (b'{"update": {"progress": 1' + b"0" * 5000 + b"}}", "not valid JSON"),
}


def _every_view(model: FleetModel) -> None:
    """What the dashboard asks the model for while it paints: none of it may raise."""
    for column in SORT_KEYS:
        for reverse in (False, True):
            model.filter_rows("", column, reverse)
    model.filter_rows("version:1 !status:error", "version")
    model.channels(), model.groups(), model.lock_groups(), model.stuck_nodes(), model.counts()


async def test_hostile_node_status_values_are_rows_not_exceptions(v3: Any, clean_etcd: str) -> None:
    for mid, (raw, _) in STATUSES.items():
        await v3.put(STATUS.format(mid).encode(), raw)
    run = Running(clean_etcd)
    try:
        await run.until(lambda m: set(STATUSES) <= set(m.rows), what="every status")
        rows = run.model.rows
        for mid, (_, field) in STATUSES.items():
            if field is None:
                assert rows[mid].error is None, rows[mid].error
            else:
                assert rows[mid].error is not None and field in rows[mid].error, (mid, rows[mid].error)
                assert STATUS.format(mid) in rows[mid].error  # names the key
        assert rows["superscript"].version == "1.²" and rows["other-usr"].other_version == "2.²"
        for row in rows.values():
            for ts in (row.last_check, row.booted_at, row.reported_at):
                assert ts is None or TIME_MIN <= ts <= TIME_MAX
            assert row.update_progress is None or 0 <= row.update_progress <= 1
        _every_view(run.model)
        ordered = [r.machine_id for r in run.model.filter_rows("", "version")]
        assert ordered.index("superscript") > ordered.index("nan-progress")  # after every real version

        # live changes take the same path as the listing
        await v3.put(STATUS.format("superscript").encode(), _with("superscript", "update.progress", -0.5))
        await run.until(lambda m: m.rows["superscript"].error is not None, what="the bad progress")
        _every_view(run.model)
    finally:
        await run.close()


async def test_hostile_airlock_and_audit_values(v3: Any, clean_etcd: str) -> None:
    airlock = airlock_group_key("{}")
    await v3.put(airlock.format("deep").encode(), b"[" * 100_000)
    await v3.put(airlock.format("huge").encode(), b'{"total_slots": 1' + b"0" * 30 + b', "holders": []}')
    await v3.put(audit_key("0001").encode(), b'{"at": NaN, "by": "x", "action": "unlock"}')
    await v3.put(audit_key("0002").encode(), b'{"at": 1e300, "by": "x", "action": "check"}')
    run = Running(clean_etcd, airlock=True)
    try:
        await run.until(
            lambda m: len(m.lock_groups()) == 2 and len([e for e in m.activity if e.source == "audit"]) == 2,
            what="both airlock groups and both audit records",
        )
        errors = {g.group: g.error for g in run.model.lock_groups()}
        assert "nested too deeply" in (errors["deep"] or "") and "int64" in (errors["huge"] or "")
        assert run.model.connections["etcd"].status == "connected"
        assert all(TIME_MIN <= e.at <= TIME_MAX for e in run.model.activity)
    finally:
        await run.close()


# --- the update server -----------------------------------------------------------------------


async def test_an_omaha_version_that_is_not_a_version_reaches_the_model_harmlessly(
    server: RunningServer,
) -> None:
    publish(server, "4700.0.0", "beta")
    check_in(server.url, "good", version="4700.0.0")
    check_in(server.url, "odd", version="1.²")  # unauthenticated, accepted by the server
    buffer = UpdateBuffer()
    model = FleetModel()
    source = FeedSource(server.url, buffer.put)
    task = asyncio.create_task(source.run())
    try:
        await wait_model(model, buffer, lambda m: {"good", "odd"} <= set(m.rows), what="both machines")
        assert model.rows["odd"].version == "1.²"
        (beta,) = [c for c in model.channels() if c.name == "beta"]  # raised ValueError before
        assert (beta.progress.done, beta.progress.total) == (1, 2)
        _every_view(model)
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)


async def test_hostile_feed_values_are_read_defensively() -> None:
    snap = snapshot(7, "1.²")
    snap["channels"][0]["updated_at"] = 10**400
    snap["instances"] = [
        {"machine_id": "a", "version": "1.²", "track": "beta", "last_check": float("nan")},
        {"machine_id": "b", "version": "٣", "track": "beta", "last_check": 1e300, "status": ["x"]},
    ]
    snap["activity"] = [{"id": 1, "at": float("inf"), "kind": "Note", "message": {"m": 1}}]
    event = (
        "event: instance\nid: 8\n"
        'data: {"machine_id": "c", "version": "1.\u00b2", "track": "beta", "last_check": 1e999}\n\n'
    )
    # httpx's Response(json=...) refuses NaN; the server is free to send it
    server = FakeServer(feeds=[(event,)], snapshots=[])
    server.snapshots.append(snap)
    original = server.__call__

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/snapshot":
            body = json.dumps(server.snapshots.pop(0)).encode()
            return httpx.Response(200, headers={"content-type": "application/json"}, content=body)
        return original(request)

    buffer = UpdateBuffer()
    model = FleetModel()
    source = FeedSource("http://coreroll.test", buffer.put, transport=httpx.MockTransport(reply))
    task = asyncio.create_task(source.run())
    try:
        await wait_model(model, buffer, lambda m: {"a", "b", "c"} <= set(m.rows), what="three instances")
        assert [r.last_check for r in model.rows.values()] == [None, None, None]
        assert model.channels()[0].updated_at is None and model.channel_version("beta") == "1.²"
        assert all(TIME_MIN <= e.at <= TIME_MAX for e in model.activity)
        _every_view(model)
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)
