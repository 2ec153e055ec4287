"""Each key's parser beside its builder (coreroll.wire.keys), and every reader agreeing on it: the
node agent's command router, the dashboard's etcd source, the airlock reader and the audit reader
took keys apart each in their own way (a nested command id ran on the node but never showed on the
dashboard; a node key with an empty machine id made a row with no name)."""

from __future__ import annotations

import pytest

from coreroll.node.commandbus import _command
from coreroll.watch import updates as u
from coreroll.watch.etcd_source import key_update
from coreroll.wire import keys
from coreroll.wire.records import AuditRecord, CommandRecord
from coreroll.wire.times import iso_time


@pytest.mark.parametrize("machine_id", ["m1", "a1b2c3", "weird id é"])
def test_every_builder_round_trips_through_its_parser(machine_id: str) -> None:
    assert keys.parse_node_key(keys.status_key(machine_id)) == keys.NodeKey(machine_id, keys.STATUS_LEAF)
    assert keys.parse_node_key(keys.alive_key(machine_id)) == keys.NodeKey(machine_id, keys.ALIVE_LEAF)
    assert keys.parse_command_key(keys.command_key(machine_id, "0001-ab")) == (machine_id, "0001-ab")
    assert keys.parse_audit_key(keys.audit_key("0001-ab")) == "0001-ab"
    assert keys.parse_airlock_key(keys.airlock_key(machine_id)) == machine_id


@pytest.mark.parametrize(
    "key",
    [
        keys.NODES_PREFIX + "/status",  # empty machine id
        keys.NODES_PREFIX + "m1/status/extra",
        keys.NODES_PREFIX + "m1/other",
        keys.COMMANDS_PREFIX + "m1/a/b",  # a command id never holds a slash
        keys.COMMANDS_PREFIX + "/c1",
        keys.COMMANDS_PREFIX + "m1/",
        keys.AUDIT_PREFIX,
        keys.AUDIT_PREFIX + "a/b",
        keys.AIRLOCK_PREFIX + "g/h/v1/semaphore",
        keys.AIRLOCK_PREFIX + "/v1/semaphore",
        keys.AIRLOCK_PREFIX + "g/v1/other",
    ],
)
def test_a_key_that_is_not_ours_is_refused_by_every_reader(key: str) -> None:
    assert keys.parse_node_key(key) is None
    assert keys.parse_command_key(key) is None
    assert keys.parse_audit_key(key) is None
    assert keys.parse_airlock_key(key) is None
    assert key_update(key, b"{}", airlock=True) is None  # the dashboard
    assert _command(key, b"{}") is None  # the node's command router


def test_the_agent_and_the_dashboard_agree_on_a_command_key() -> None:
    key = keys.command_key("m1", "0001-ab")
    update = key_update(key, b"{}")
    command = _command(key, b"{}")
    assert isinstance(update, u.NodeCommand) and command is not None
    assert (
        (update.machine_id, update.command_id)
        == (command.machine_id, command.command_id)
        == ("m1", "0001-ab")
    )


def test_a_bad_escape_in_an_airlock_group_is_named_not_hidden() -> None:
    assert keys.parse_airlock_key(keys.AIRLOCK_PREFIX + "50%zz/v1/semaphore") == "50%zz"
    assert keys.parse_airlock_key(keys.AIRLOCK_PREFIX + "a+b%2Fc/v1/semaphore") == "a b/c"


def test_records_carry_the_one_timestamp_format() -> None:
    assert iso_time(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
    command = CommandRecord("check", {}, "ops@host", at=iso_time(0))
    assert (
        command.encode()
        == b'{"action": "check", "args": {}, "by": "ops@host", "at": "1970-01-01T00:00:00.000Z"}'
    )
    audit = AuditRecord("unlock", "default", "ok", "ops@host", at=iso_time(0))
    assert audit.encode() == (
        b'{"at":"1970-01-01T00:00:00.000Z","by":"ops@host","action":"unlock","target":"default","result":"ok"}'
    )
