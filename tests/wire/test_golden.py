"""The bytes other programs and older coreroll nodes expect: the one place tests spell keys and
the status document literally (every other test builds them with coreroll.wire)."""

from __future__ import annotations

from coreroll.locks import semaphore_key
from coreroll.locks.airlock import airlock_key
from coreroll.node.engine import EngineSnapshot
from coreroll.node.nodestatus import RebootInfo, build_report
from coreroll.wire import keys
from coreroll.wire.status import encode_alive, encode_status


def test_coreroll_keys() -> None:
    assert keys.status_key("m1") == "coreroll/v1/nodes/m1/status"
    assert keys.alive_key("m1") == "coreroll/v1/nodes/m1/alive"
    assert keys.command_prefix("m1") == "coreroll/v1/commands/m1/"
    assert keys.command_key("m1", "0001") == "coreroll/v1/commands/m1/0001"
    assert keys.audit_key("0001") == "coreroll/v1/audit/0001"
    assert (keys.NODES_PREFIX, keys.COMMANDS_PREFIX, keys.AUDIT_PREFIX) == (
        "coreroll/v1/nodes/",
        "coreroll/v1/commands/",
        "coreroll/v1/audit/",
    )


def test_locksmith_and_airlock_keys() -> None:
    assert keys.LOCK_PREFIX == "coreos.com/updateengine/rebootlock/"
    assert semaphore_key("") == keys.LOCK_DEFAULT_KEY == "coreos.com/updateengine/rebootlock/semaphore"
    assert semaphore_key("a/b") == "coreos.com/updateengine/rebootlock/groups/a%2Fb/semaphore"
    assert keys.AIRLOCK_PREFIX == "com.coreos.airlock/groups/"
    assert airlock_key("workers/eu") == "com.coreos.airlock/groups/workers%2Feu/v1/semaphore"


def test_status_document_bytes_are_unchanged() -> None:
    """Measured from the writer before the field table existed: readers in the field depend on it."""
    doc = build_report(
        machine_id="m1",
        hostname="h1",
        channel="beta",
        server="http://127.0.0.1:8400",
        version="4699.0.0",
        active_partition="USR-A",
        partitions=[{"label": "USR-A", "version": "4699.0.0", "priority": 2, "tries": 0, "successful": 1}],
        update=EngineSnapshot("UPDATE_STATUS_DOWNLOADING", 0.123456, "4700.0.1", 1048576, 1795770000),
        reboot=RebootInfo("etcd-lock", "workers", "Thu 23:00 1h30m", None),
        boot_id="b1",
        booted_at=1700000000.5,
        reported_at=1700000001.25,
        last_command={"id": "01", "action": "check", "result": "ok", "at": "2026-11-27T09:00:00.000Z"},
    )
    assert encode_status(doc) == (
        b'{"machine_id":"m1","hostname":"h1","channel":"beta","server":"http://127.0.0.1:8400",'
        b'"version":"4699.0.0","active_partition":"USR-A","partitions":[{"label":"USR-A",'
        b'"version":"4699.0.0","priority":2,"tries":0,"successful":1}],"update":{"status":'
        b'"UPDATE_STATUS_DOWNLOADING","progress":0.1235,"new_version":"4700.0.1","new_size":1048576,'
        b'"last_checked_time":1795770000},"reboot":{"strategy":"etcd-lock","lock_group":"workers",'
        b'"window":"Thu 23:00 1h30m","holds_lock":null},"boot_id":"b1","booted_at":'
        b'"2023-11-14T22:13:20.500Z","reported_at":"2023-11-14T22:13:21.250Z","last_command":'
        b'{"id":"01","action":"check","result":"ok","at":"2026-11-27T09:00:00.000Z"}}'
    )
    assert encode_alive("b1", "h1") == b'{"boot_id": "b1", "hostname": "h1"}'
