"""Pure parts of the update engine: its state file, the boot event of a check, the schedule fuzz,
the node status document. No server here (see test_engine_server.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest

from coreroll.node.clock import ScaledClock
from coreroll.node.engine import EngineSnapshot, NodeIdentity, UpdateEngine, fuzz
from coreroll.node.engine_state import (
    STATE_FILE,
    EngineState,
    EngineStateError,
    load_engine_state,
    save_engine_state,
)
from coreroll.node.nodestatus import RebootInfo, build_status
from coreroll.node.partitions import Disk
from coreroll.omaha.codes import ErrorCode, EventResult, EventType


def make_engine(state: Path, boot_id: str = "{b1}") -> UpdateEngine:
    if not Disk.exists(state):
        Disk.create(state, "1.0.0", b"old image", fsync=False)
    return UpdateEngine(
        disk=Disk(state, fsync=False),
        state_dir=state,
        server_url="http://127.0.0.1:9/v1/update/",
        track="stable",
        identity=NodeIdentity("a" * 32, boot_id),
        clock=ScaledClock(1000),
        http=httpx.AsyncClient(),
    )


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    assert load_engine_state(path) is None
    state = EngineState(current_operation="UPDATE_STATUS_DOWNLOADING", progress=0.5, new_version="2.0.0")
    save_engine_state(path, state)
    assert load_engine_state(path) == state
    assert json.loads(path.read_text())["current_operation"] == "UPDATE_STATUS_DOWNLOADING"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"current_operation": "UPDATE_STATUS_NAPPING"}', "UPDATE_STATUS_NAPPING"),
        (b'{"progress": 7}', "progress"),
        (b'{"format": 9}', "unknown format"),
    ],
)
def test_unreadable_state_file_is_named_and_never_overwritten(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with pytest.raises(EngineStateError) as info:
        make_engine(tmp_path)
    assert str(tmp_path / STATE_FILE) in str(info.value)
    assert complaint in str(info.value)
    assert (tmp_path / STATE_FILE).read_bytes() == content


def test_first_check_of_a_fresh_node_reports_a_never_written_pref(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    event = engine._boot_event()
    assert (event.event_type, event.result, event.previous_version) == (3, 2, "0.0.0.0")
    assert engine.state.aleph_version == "1.0.0"


def test_check_after_update_reports_previous_version_and_after_rollback_error_44(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    disk = engine.disk
    disk.write_image("USR-B", b"new image", "2.0.0")
    disk.postinstall("USR-B")
    engine.state.previous_version = "1.0.0"
    save_engine_state(tmp_path / STATE_FILE, engine.state)

    disk.boot()  # GRUB picks USR-B (2.0.0)
    after_update = make_engine(tmp_path, boot_id="{b2}")
    event = after_update._boot_event()
    assert (event.event_type, event.result, event.previous_version) == (
        EventType.UpdateComplete,
        EventResult.SuccessReboot,
        "1.0.0",
    )

    disk.boot()  # 2.0.0 never marked good: tries exhausted, back on USR-A (1.0.0)
    assert disk.active.version == "1.0.0"
    rolled_back = make_engine(tmp_path, boot_id="{b3}")
    event = rolled_back._boot_event()
    assert (event.event_type, event.result, event.errorcode) == (3, 0, ErrorCode.RollbackError)
    assert event.previous_version is None


def test_need_reboot_survives_an_engine_restart_only_within_the_same_boot(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, boot_id="{b1}")
    engine._set("UPDATE_STATUS_UPDATED_NEED_REBOOT", new_version="2.0.0")
    assert make_engine(tmp_path, boot_id="{b1}").status == "UPDATE_STATUS_UPDATED_NEED_REBOOT"
    fresh_boot = make_engine(tmp_path, boot_id="{b2}")
    assert fresh_boot.status == "UPDATE_STATUS_IDLE"
    assert fresh_boot.state.new_version == ""


def test_fuzz_stays_within_half_the_spread() -> None:
    rng = random.Random(7)
    values = [fuzz(rng, 45 * 60, 10 * 60) for _ in range(2000)]
    assert min(values) >= 40 * 60 and max(values) <= 50 * 60
    assert max(values) - min(values) > 8 * 60  # it really spreads


def test_status_document_has_exactly_the_design_keys(tmp_path: Path) -> None:
    disk = Disk.create(tmp_path, "1.0.0", b"x", fsync=False)
    doc = build_status(
        machine_id="m1",
        hostname="node-1",
        channel="beta",
        server="http://s/v1/update/",
        disk=disk,
        update=EngineSnapshot("UPDATE_STATUS_DOWNLOADING", 0.25, "2.0.0", 1234, 1700000000),
        reboot=RebootInfo("etcd-lock", "workers", None, False),
        boot_id="b",
        booted_at=1700000000.0,
        reported_at=1700000001.5,
    )
    assert set(doc) == {
        "machine_id", "hostname", "channel", "server", "version", "active_partition", "partitions",
        "update", "reboot", "boot_id", "booted_at", "reported_at", "last_command",
    }  # fmt: skip
    assert doc["partitions"][0] == {
        "label": "USR-A",
        "version": "1.0.0",
        "priority": 2,
        "tries": 0,
        "successful": 1,
    }
    assert set(doc["update"]) == {"status", "progress", "new_version", "new_size", "last_checked_time"}
    assert set(doc["reboot"]) == {"strategy", "lock_group", "window", "holds_lock"}
    assert doc["reported_at"] == "2023-11-14T22:13:21.500Z"
