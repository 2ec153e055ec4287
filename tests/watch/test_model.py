"""FleetModel: pure unit tests (no etcd, no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coreroll.watch import updates as u
from coreroll.watch.model import FleetModel, QueryError
from coreroll.wire.keys import audit_key, command_key, status_key
from tests.watch.helpers import FakeClock, status_bytes

KEY = status_key("{}")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(mid: str, **kw: object) -> u.NodeStatus:
    return u.NodeStatus(mid, KEY.format(mid), status_bytes(mid, **kw))


def instance(mid: str, **kw: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "machine_id": mid,
        "ip": "10.0.0.9",
        "version": "4699.0.0",
        "track": "beta",
        "group": "beta",
        "status": "Complete",
        "status_reason": None,
        "last_check": "2026-11-27T09:31:07.000Z",
        "update_in_progress": False,
        "stale": False,
    }
    doc.update(kw)
    return doc


def channel(name: str, version: str | None) -> dict[str, object]:
    return {"name": name, "version": version, "updated_at": "2026-11-27T09:00:00Z"}


def group(gid: str, enabled: bool = True, halted: str | None = None) -> dict[str, object]:
    return {
        "id": gid,
        "name": gid,
        "track": gid,
        "channel": gid,
        "policy": {"updates_enabled": enabled, "max_concurrent": 2},
        "rollout_in_progress": True,
        "halted_reason": halted,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def model(clock: FakeClock) -> FleetModel:
    return FleetModel(clock=clock, lock_stale_after=600, stuck_after=300)


def test_node_known_only_to_the_server_shows_what_the_server_knows(model: FleetModel) -> None:
    changed = model.apply(u.FeedSnapshot(instances=(instance("srv", status="OnHold", status_reason="max"),)))
    assert changed == {"srv"}
    row = model.rows["srv"]
    assert (row.version, row.channel, row.server_status, row.state) == (
        "4699.0.0",
        "beta",
        "OnHold",
        "onhold",
    )
    assert row.status_label == "OnHold"
    assert row.hostname is None and row.active_partition is None and row.online is None
    assert row.in_server and not row.in_etcd
    assert row.last_check is not None


def test_etcd_report_wins_and_server_status_is_kept(model: FleetModel) -> None:
    model.apply(status("n1", version="4700.0.1"))
    model.apply(u.FeedEvent("instance", "5", instance("n1", version="4699.0.0", status="OnHold")))
    row = model.rows["n1"]
    assert row.version == "4700.0.1" and row.server_version == "4699.0.0"
    assert row.state == "onhold"  # idle on the node because the server held it
    model.apply(
        u.FeedEvent("instance", "6", instance("n1", status="Error", status_reason="3/0 errorcode 10"))
    )
    assert model.rows["n1"].state == "idle"  # the node's own word; the server column says Error
    assert ids(model.filter_rows("status:error")) == ["n1"]  # ... and the filter finds it
    assert row.new_version is None  # update_engine's "0.0.0.0" means none
    assert row.other_version == "4650.0.0" and row.active_partition == "USR-A"
    assert row.online is False  # in etcd but no alive key


def test_apply_reports_only_real_changes_and_bumps_versions(model: FleetModel) -> None:
    assert model.apply(status("n1")) == {"n1"}
    first = model.version
    assert model.rows["n1"].rev == first
    assert model.apply(status("n1")) == set()  # same report again: nothing to repaint
    assert model.version == first
    assert model.apply(u.NodeAlive("n1", True)) == {"n1"}
    assert model.version > first and model.rows["n1"].rev == model.version


def test_corrupt_status_marks_the_row_unreadable_and_keeps_the_last_good_values(model: FleetModel) -> None:
    model.apply(status("n1", version="4700.0.1"))
    model.apply(u.NodeStatus("n1", KEY.format("n1"), b"{not json"))
    row = model.rows["n1"]
    assert row.state == "unreadable" and row.status_label == "unreadable"
    assert row.error is not None and row.error.startswith(status_key("n1") + ": not valid JSON")
    assert row.version == "4700.0.1"
    model.apply(u.NodeStatus("n2", KEY.format("n2"), b"[1, 2]"))
    assert "expected a JSON object" in (model.rows["n2"].error or "")
    assert model.rows["n2"].version is None


def test_a_wrongly_typed_field_is_named_and_the_rest_renders(model: FleetModel) -> None:
    doc = json.loads(status_bytes("n1"))
    doc["update"]["progress"] = "half"
    model.apply(u.NodeStatus("n1", KEY.format("n1"), json.dumps(doc).encode()))
    row = model.rows["n1"]
    assert row.error == status_key("n1") + ": field update.progress is 'half', expected a number from 0 to 1"
    assert row.hostname == "host-n1" and row.update_progress is None


def fleet(model: FleetModel) -> None:
    model.apply(status("a1", channel="alpha", version="4700.0.1"))
    model.apply(status("b1", version="4699.0.0", status="UPDATE_STATUS_DOWNLOADING", progress=0.3))
    model.apply(status("b2", version="4700.0.1"))
    model.apply(status("b3", version="4699.0.0", status="UPDATE_STATUS_REPORTING_ERROR_EVENT"))
    model.apply(u.NodeStatus("b4", KEY.format("b4"), b"garbage"))
    for mid in ("a1", "b1", "b2"):
        model.apply(u.NodeAlive(mid, True))
    model.apply(u.LockState("", "v3", "k", 0, 1, ("b2",)))
    model.apply(
        u.FeedSnapshot(
            channels=(channel("alpha", "4700.0.1"), channel("beta", "4700.0.1")),
            groups=(group("alpha"), group("beta", enabled=False, halted="2 failures")),
            instances=(instance("s1", version="4650.0.0", status="OnHold"),),
        )
    )


def ids(rows: list) -> list[str]:
    return [r.machine_id for r in rows]


def test_filter_terms(model: FleetModel) -> None:
    fleet(model)
    assert ids(model.filter_rows("channel:beta")) == ["b1", "b2", "b3", "s1"]
    assert ids(model.filter_rows("status:error")) == ["b3", "b4"]  # error and unreadable
    assert ids(model.filter_rows("status:downloading")) == ["b1"]
    assert ids(model.filter_rows("lock:held")) == ["b2"]
    assert ids(model.filter_rows("online:no")) == ["b3", "b4"]  # s1 is unknown, not offline
    assert ids(model.filter_rows("channel:beta !status:error online:yes")) == ["b1", "b2"]
    assert ids(model.filter_rows("host-a1")) == ["a1"]  # free text
    assert ids(model.filter_rows("status:onhold")) == ["s1"]
    assert ids(model.filter_rows("usr:a version:4700")) == ["a1", "b2"]
    with pytest.raises(QueryError, match="unknown filter field 'chanel'"):
        model.filter_rows("chanel:beta")


def test_free_text_searches_every_listed_field_and_follows_row_changes(model: FleetModel) -> None:
    fleet(model)
    model.apply(u.FeedEvent("instance", "7", instance("b1", ip="10.9.8.7", group="canary")))
    assert ids(model.filter_rows("HOST-B")) == ["b1", "b2", "b3"]  # hostname, any case
    assert ids(model.filter_rows("alpha")) == ["a1"]  # channel
    assert ids(model.filter_rows("4650")) == ["s1"]  # version known only to the server
    assert ids(model.filter_rows("download")) == ["b1"]  # status label
    assert ids(model.filter_rows("unreadable")) == ["b4"]
    assert ids(model.filter_rows("onhold")) == ["s1"]  # server status
    assert ids(model.filter_rows("10.9.8")) == ["b1"] and ids(model.filter_rows("canary")) == ["b1"]
    assert ids(model.filter_rows("s1")) == ["s1"]  # machine id
    assert model.filter_rows("beta4699") == []  # never across two fields
    # the search text is rebuilt with the row: a new status is found, the old one is not
    model.apply(status("b1", version="4699.0.0", status="UPDATE_STATUS_UPDATED_NEED_REBOOT"))
    assert ids(model.filter_rows("need-reboot")) == ["b1"] and model.filter_rows("download") == []
    reboot = {"strategy": "etcd-lock", "lock_group": "db-west", "window": None, "holds_lock": True}
    model.apply(status("b2", version="4700.0.1", reboot=reboot))
    assert ids(model.filter_rows("db-west")) == ["b2"]  # lock group
    assert ids(model.filter_rows("id:b")) == ["b1", "b2", "b3", "b4"]
    assert ids(model.filter_rows("status:reboot !channel:alpha")) == ["b1"]
    with pytest.raises(QueryError, match="expected yes or no"):
        model.filter_rows("online:maybe")


def test_several_words_negated_words_and_fields_mix_in_one_filter(model: FleetModel) -> None:
    fleet(model)
    assert ids(model.filter_rows("host-b 4699")) == ["b1", "b3"]  # every word must match
    assert ids(model.filter_rows("host-b !4699")) == ["b2"]  # a negated word excludes
    assert ids(model.filter_rows("-host-b beta")) == ["s1"]
    assert ids(model.filter_rows("host channel:beta")) == ["b1", "b2", "b3"]  # a word and a field
    assert model.filter_rows("host-b nothing-like-this") == []


def test_sort_by_column_with_unknowns_last(model: FleetModel) -> None:
    fleet(model)
    assert ids(model.filter_rows(sort="version")) == ["s1", "b1", "b3", "a1", "b2", "b4"]
    assert ids(model.filter_rows(sort="version", reverse=True)) == ["b2", "a1", "b3", "b1", "s1", "b4"]
    assert ids(model.filter_rows(sort="lock"))[0] == "b2"
    model.apply(status("z", version="4699.0.10"))
    model.apply(status("y", version="4699.0.9"))
    assert ids(model.filter_rows("id:z id:z", sort="version")) == ["z"]
    order = ids(model.filter_rows("version:4699.0.", sort="version"))
    assert order.index("y") < order.index("z")  # numeric, not text, order
    with pytest.raises(QueryError):
        model.filter_rows(sort="nope")


def test_counts_and_rollout_progress(model: FleetModel) -> None:
    fleet(model)
    counts = model.counts()
    assert counts["updating"] == 1 and counts["error"] == 1 and counts["unreadable"] == 1
    assert counts["onhold"] == 1 and counts["idle"] == 2
    beta = {c.name: c for c in model.channels()}["beta"]
    assert beta.version == "4700.0.1"
    p = beta.progress
    assert (p.total, p.done, p.updating, p.failed, p.on_hold) == (4, 1, 1, 1, 1)
    assert p.fraction == 0.25
    g = model.group("beta")
    assert g is not None and g.paused and g.halted_reason == "2 failures"
    assert g.progress.total == 4  # b1..b3 (etcd-only, on the beta track) and s1 (server group beta)
    alpha = {c.name: c for c in model.channels()}["alpha"]
    assert alpha.progress.fraction == 1.0


def test_stale_lock_holders(model: FleetModel, clock: FakeClock) -> None:
    model.apply(status("on"))
    model.apply(u.NodeAlive("on", True))
    model.apply(status("off"))
    model.apply(u.LockSnapshot("v3", (u.LockState("", "v3", "k", -1, 2, ("ghost", "off", "on")),)))
    holders = {h.machine_id: h for h in model.lock_groups()[0].holders}
    assert holders["ghost"].stale and holders["ghost"].stale_reason == "unknown to the fleet"
    # offline when first seen: offline since its last report (2026-11-27T09:30), long past the grace
    assert holders["off"].stale and (holders["off"].stale_reason or "").startswith("offline for over ")
    assert not holders["on"].stale and holders["on"].since_exact is False  # held before we looked
    clock.now += 601
    holders = {h.machine_id: h for h in model.lock_groups()[0].holders}
    assert holders["on"].stale and holders["on"].stale_reason == "held for over 10m"
    assert model.stale_holder_ids() == {"ghost", "off", "on"}
    assert ids(model.filter_rows("lock:stale")) == ["off", "on"]
    # a lock taken while we watch has an exact since
    model.apply(u.LockState("web", "v3", "k2", 0, 1, ("on",)))
    assert model.lock_group("web").holders[0].since_exact  # type: ignore[union-attr]
    assert model.rows["on"].lock_groups_held == ("", "web")


def test_holder_released_and_group_removed(model: FleetModel) -> None:
    model.apply(status("n1"))
    assert model.rows["n1"].holds_lock is False  # the node's word while no lock state is known
    model.apply(u.LockState("", "v3", "k", 0, 1, ("n1",)))
    assert model.rows["n1"].holds_lock is True
    changed = model.apply(u.LockState("", "v3", "k", 1, 1, ()))
    assert changed == {"n1"} and model.rows["n1"].holds_lock is False
    model.apply(u.LockSnapshot("v3", ()))
    assert model.lock_groups() == []


def test_unreadable_lock_keeps_last_holders_with_the_error(model: FleetModel) -> None:
    model.apply(u.LockState("", "v3", "k", 0, 1, ("n1",)))
    model.apply(u.LockState("", "v3", "k", error="k: invalid JSON"))
    (view,) = model.lock_groups()
    assert view.error == "k: invalid JSON" and [h.machine_id for h in view.holders] == ["n1"]


def test_stuck_nodes(model: FleetModel, clock: FakeClock) -> None:
    model.apply(status("slow", status="UPDATE_STATUS_DOWNLOADING", progress=0.1))
    model.apply(u.NodeAlive("slow", True))
    model.apply(status("fine"))
    clock.now += 200
    model.apply(status("slow", status="UPDATE_STATUS_DOWNLOADING", progress=0.2))  # progress, same status
    assert model.stuck_nodes() == []
    clock.now += 101
    (stuck,) = model.stuck_nodes()
    assert stuck.machine_id == "slow" and stuck.state == "downloading" and stuck.seconds == pytest.approx(301)
    model.apply(status("slow", status="UPDATE_STATUS_UPDATED_NEED_REBOOT"))
    assert model.stuck_nodes() == []  # a new status restarts the clock


def test_etcd_snapshot_replaces_what_vanished(model: FleetModel) -> None:
    model.apply(status("gone"))
    model.apply(status("both"))
    model.apply(u.NodeAlive("gone", True))
    model.apply(u.FeedSnapshot(instances=(instance("both"),)))
    model.apply(u.LockState("", "v3", "k", 0, 1, ("gone",)))
    changed = model.apply(
        u.EtcdSnapshot(revision=9, statuses=(status("new"),), alive=frozenset({"new"}), locks=())
    )
    assert changed == {"gone", "both", "new"}
    assert set(model.rows) == {"both", "new"}
    assert model.rows["both"].in_etcd is False and model.rows["both"].version == "4699.0.0"
    assert model.lock_groups() == []


def test_commands_and_audit(model: FleetModel) -> None:
    cmd = json.dumps({"action": "check", "args": {}, "by": "ops@bastion", "at": "2026-11-27T09:00:00Z"})
    model.apply(u.NodeCommand("n1", "0001", command_key("n1", "0001"), cmd.encode()))
    row = model.rows["n1"]
    assert [c.action for c in row.pending_commands] == ["check"] and row.online is None
    model.apply(u.NodeCommand("n1", "0001", command_key("n1", "0001"), None))
    assert "n1" not in model.rows
    record = {
        "at": "2026-11-27T09:00:00Z",
        "by": "ops@bastion",
        "action": "unlock",
        "target": "n1",
        "result": "ok",
    }
    model.apply(u.AuditRecord("01", audit_key("01"), json.dumps(record).encode()))
    model.apply(u.AuditRecord("01", audit_key("01"), json.dumps(record).encode()))  # replayed
    entries = [e for e in model.activity if e.source == "audit"]
    assert len(entries) == 1 and entries[0].message == "unlock n1: ok" and entries[0].by == "ops@bastion"


def test_feed_events_and_activity(model: FleetModel) -> None:
    model.apply(u.FeedSnapshot(channels=(channel("beta", "1"),), groups=(group("beta"),)))
    before = model.channels_version
    model.apply(u.FeedEvent("channel", "7", channel("beta", "2")))
    assert model.channels_version > before and model.channel_version("beta") == "2"
    model.apply(u.FeedEvent("group", "8", group("beta", enabled=False)))
    assert model.group("beta").paused  # type: ignore[union-attr]
    act = {
        "id": 17,
        "at": "2026-11-27T09:31:07Z",
        "kind": "RolloutStarted",
        "severity": "info",
        "message": "go",
    }
    seq = model.activity_seq
    model.apply(u.FeedEvent("activity", "9", act))
    model.apply(u.FeedSnapshot(activity=(act,)))  # the same record again after a resync
    new = model.activity_after(seq)
    assert [e.kind for _, e in new] == ["RolloutStarted"]
    model.apply(u.FeedEvent("release", "10", {"version": "2"}))  # ignored, no error


def test_connection_states_and_log(model: FleetModel, clock: FakeClock) -> None:
    assert model.is_stale("etcd")
    model.apply(u.Connection("etcd", "connecting", "http://127.0.0.1:2379"))
    model.apply(u.Connection("etcd", "connected", "http://127.0.0.1:2379"))
    assert not model.is_stale("etcd") and model.connections["etcd"].last_ok == clock.now
    assert [e.message for e in model.activity] == []  # the first connection is not news
    clock.now += 5
    model.apply(u.Connection("etcd", "down", "connection refused"))
    down_at = clock.now
    # retries while etcd stays away: still "down" since the first failure, one log line
    for _ in range(3):
        clock.now += 1
        model.apply(u.Connection("etcd", "connecting", "http://127.0.0.1:2379"))
        model.apply(u.Connection("etcd", "down", "connection refused"))
    state = model.connections["etcd"]
    assert state.status == "down" and state.last_ok == down_at - 5 and state.since == down_at
    model.apply(u.Connection("etcd", "connecting", "http://127.0.0.1:2379"))
    assert model.connections["etcd"].status == "down"
    assert model.connections["etcd"].detail == "connection refused (retrying)"
    model.apply(u.Connection("etcd", "connected"))
    assert model.connections["etcd"].status == "connected"
    assert [e.message for e in model.activity] == [
        "etcd unreachable: connection refused",
        "etcd connected again",
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"status": "UPDATE_STATUS_DOWNLOADING", "progress": 1, "new_version": "4700.0.1"},
        {"booted_at": 1795770000.5, "reported_at": 1795770001},
        {"last_command": {"id": "01", "action": "check", "result": "ok", "at": "2026-11-27T09:00:00Z"}},
        {"partitions": [], "active_partition": None, "hostname": None},
    ],
)
def test_fast_and_careful_readers_agree(overrides: dict[str, object]) -> None:
    from coreroll.watch.parse import _checked_report, _well_formed_report

    data = json.loads(status_bytes("n1", **overrides))
    fast = _well_formed_report(json.dumps(data).encode())
    careful, problem = _checked_report(data, "k")
    assert fast is not None and problem is None
    assert fast == careful


def test_a_bad_time_is_named(model: FleetModel) -> None:
    model.apply(status("n1", booted_at=True))
    assert (
        model.rows["n1"].error
        == status_key("n1") + ": field booted_at is True, expected a time within years 1..9999"
    )


def test_reads_what_the_node_agent_writes(model: FleetModel, tmp_path: Path) -> None:
    """The agent's own status encoder (coreroll.node.nodestatus), not a hand-written document."""
    from coreroll.node.engine import EngineSnapshot
    from coreroll.node.nodestatus import RebootInfo, build_status, encode_status, status_key
    from coreroll.node.partitions import Disk

    disk = Disk.create(tmp_path / "disk", "4600.0.0", b"image", fsync=False)
    disk.boot()
    doc = build_status(
        machine_id="agent1",
        hostname="web-1",
        channel="beta",
        server="http://127.0.0.1:8400",
        disk=disk,
        update=EngineSnapshot("UPDATE_STATUS_DOWNLOADING", 0.25, "4700.0.1", 4096, 1795770000),
        reboot=RebootInfo("etcd-lock", "web", "Thu 23:00 1h30m", True),
        boot_id="b1",
        booted_at=1795760000.0,
        reported_at=1795770001.0,
        last_command={"id": "01", "action": "check", "result": "ok", "at": "2026-11-27T09:00:00.000Z"},
    )
    model.apply(u.NodeStatus("agent1", status_key("agent1"), encode_status(doc)))
    row = model.rows["agent1"]
    assert row.error is None
    assert (row.hostname, row.channel, row.version, row.active_partition) == (
        "web-1",
        "beta",
        "4600.0.0",
        "USR-A",
    )
    assert (row.update_status, row.update_progress, row.new_version) == (
        "UPDATE_STATUS_DOWNLOADING",
        0.25,
        "4700.0.1",
    )
    assert (row.lock_group, row.holds_lock, row.reboot_window) == ("web", True, "Thu 23:00 1h30m")
    assert row.booted_at == 1795760000.0 and row.last_check == 1795770000.0
    assert row.last_command is not None and row.last_command.result == "ok"
    assert [p.label for p in row.partitions] == ["USR-A", "USR-B"] and row.other_version is None


def test_offline_holder_is_rebooting_within_the_grace_and_stale_after_it(clock: FakeClock) -> None:
    model = FleetModel(clock=clock, stale_offline_grace=180)
    model.apply(status("n1", reported_at="2026-11-27T09:30:00Z"))
    model.apply(u.NodeAlive("n1", True))
    model.apply(u.LockSnapshot("v3", (u.LockState("", "v3", "k", 0, 1, ("n1",)),)))
    locks_before = model.locks_version
    went_down = clock.now
    model.apply(u.NodeAlive("n1", False))  # the lease is revoked as it goes down for the reboot
    assert model.locks_version > locks_before  # the lock panel repaints
    [holder] = model.lock_groups()[0].holders
    assert holder.rebooting and not holder.stale and holder.offline_since == went_down
    assert model.stale_holder_ids() == frozenset()
    clock.now += 180  # the whole grace: still a normal reboot
    [holder] = model.lock_groups()[0].holders
    assert holder.rebooting and not holder.stale
    clock.now += 1
    [holder] = model.lock_groups()[0].holders
    assert holder.stale and not holder.rebooting and holder.stale_reason == "offline for 3m"
    assert model.stale_holder_ids() == {"n1"} and ids(model.filter_rows("lock:stale")) == ["n1"]
    # back up: neither stale nor rebooting, and the next reboot gets a fresh grace
    model.apply(u.NodeAlive("n1", True))
    [holder] = model.lock_groups()[0].holders
    assert not holder.stale and not holder.rebooting and holder.offline_since is None
    model.apply(u.NodeAlive("n1", False))
    clock.now += 60
    [holder] = model.lock_groups()[0].holders
    assert holder.rebooting and not holder.stale


def test_holder_already_offline_when_first_seen_counts_from_its_last_report(clock: FakeClock) -> None:
    model = FleetModel(clock=clock, stale_offline_grace=180)
    recent = clock.now - 30
    old = clock.now - 600
    model.apply(
        u.EtcdSnapshot(
            revision=1,
            statuses=(
                u.NodeStatus("fresh", KEY.format("fresh"), status_bytes("fresh", reported_at=iso(recent))),
                u.NodeStatus("dead", KEY.format("dead"), status_bytes("dead", reported_at=iso(old))),
            ),
            locks=(u.LockState("", "v3", "k", 0, 2, ("dead", "fresh")),),
        )
    )
    holders = {h.machine_id: h for h in model.lock_groups()[0].holders}
    assert holders["fresh"].rebooting and not holders["fresh"].stale
    assert holders["fresh"].offline_since == recent
    assert holders["dead"].stale and holders["dead"].stale_reason == "offline for over 10m"
    clock.now += 151  # `fresh` has now been quiet for 181 s
    assert model.stale_holder_ids() == {"dead", "fresh"}


def test_holder_that_went_offline_while_etcd_was_away_is_timed_from_the_resync(clock: FakeClock) -> None:
    model = FleetModel(clock=clock, stale_offline_grace=180)
    snap = u.EtcdSnapshot(
        revision=1,
        statuses=(status("n1"),),
        alive=frozenset({"n1"}),
        locks=(u.LockState("", "v3", "k", 0, 1, ("n1",)),),
    )
    model.apply(snap)
    clock.now += 3600
    model.apply(u.EtcdSnapshot(revision=9, statuses=snap.statuses, locks=snap.locks))  # alive key gone
    [holder] = model.lock_groups()[0].holders
    assert holder.rebooting and holder.offline_since == clock.now
    clock.now += 181
    [holder] = model.lock_groups()[0].holders
    assert holder.stale and (holder.stale_reason or "").startswith("offline for over 3m")


@pytest.mark.slow
def test_counts_and_progress_kept_row_by_row_agree_with_a_full_pass(clock: FakeClock) -> None:
    import random

    from coreroll.watch.rollout import rollout

    rng = random.Random(5)
    model = FleetModel(clock=clock)
    model.apply(
        u.FeedSnapshot(
            channels=(channel("alpha", "4700.0.1"), channel("beta", "4699.0.0")),
            groups=(group("alpha"), group("beta"), group("canary")),
        )
    )
    statuses = ["UPDATE_STATUS_IDLE", "UPDATE_STATUS_DOWNLOADING", "UPDATE_STATUS_UPDATED_NEED_REBOOT",
                "UPDATE_STATUS_REPORTING_ERROR_EVENT"]  # fmt: skip
    for step in range(400):
        mid = f"n{rng.randrange(30)}"
        pick = rng.random()
        if pick < 0.6:
            model.apply(status(mid, channel=rng.choice(["alpha", "beta"]), status=rng.choice(statuses),
                               version=rng.choice(["4650.0.0", "4699.0.0", "4700.0.1"])))  # fmt: skip
        elif pick < 0.7:
            model.apply(u.NodeStatus(mid, KEY.format(mid), b"not json"))
        elif pick < 0.8:
            model.apply(u.NodeStatus(mid, KEY.format(mid), None))  # gone from etcd
        elif pick < 0.9:
            grp = rng.choice(["alpha", "canary"])
            model.apply(u.FeedEvent("instance", str(step), instance(mid, group=grp, status="OnHold")))
        else:
            model.apply(u.FeedEvent("instance", str(step), {"machine_id": mid, "deleted": True}))
        rows = list(model.rows.values())
        expected_counts = {state: sum(r.state == state for r in rows) for state in model.counts()}
        assert model.counts() == expected_counts
        for view in model.channels():
            assert view.progress == rollout(
                view.name, view.version, [r for r in rows if r.channel == view.name]
            )
        for g in model.groups():
            mine = [r for r in rows if r.group == g.id or (r.group is None and r.channel == g.track)]
            assert g.progress == rollout(g.id, model.channel_version(g.channel), mine)
