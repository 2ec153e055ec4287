"""The status field table drives the writer, the reader, the fixtures and the node table's columns:
adding a field is one table row, showing it is one `field_column` (coreroll/wire/__init__.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coreroll.node.engine import EngineSnapshot
from coreroll.node.nodestatus import RebootInfo, build_report
from coreroll.watch import updates as u
from coreroll.watch.model import FleetModel
from coreroll.watch.parse import _checked_report, _well_formed_report, parse_node_status
from coreroll.wire import status as wire
from coreroll.wire.keys import status_key
from widgets.node_columns import field_column

ETA = wire.Field("update.eta", wire.INT, None, 0, "eta")
REPORT: dict[str, Any] = {
    "machine_id": "m1",
    "hostname": "h1",
    "channel": "beta",
    "server": "http://127.0.0.1:8400",
    "version": "4699.0.0",
    "active_partition": "USR-A",
    "partitions": [],
    "update": EngineSnapshot("UPDATE_STATUS_IDLE", 0.0, "", 0, 0),
    "reboot": RebootInfo("etcd-lock", "", None, False),
    "boot_id": "b1",
    "booted_at": 1700000000.0,
    "reported_at": 1700000001.0,
}


def apply(model: FleetModel, mid: str, doc: dict[str, object]) -> None:
    model.apply(u.NodeStatus(mid, status_key(mid), json.dumps(doc).encode()))


def test_every_field_in_the_table_is_written_read_and_reachable_by_path() -> None:
    doc = wire.status_document({f.path: None for f in wire.STATUS_FIELDS})
    assert [k for k in doc] == list(dict.fromkeys(f.section or f.name for f in wire.STATUS_FIELDS))
    model = FleetModel()
    apply(model, "n1", wire.sample_document("n1"))
    row = model.rows["n1"]
    assert row.error is None
    for f in wire.STATUS_FIELDS:
        row.field(f.path)  # every row names a NodeReport attribute that exists
    assert row.field("update.status") == "UPDATE_STATUS_IDLE" and row.field("machine_id") == "n1"


def test_a_new_field_needs_only_a_table_row_and_a_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "STATUS_FIELDS", (*wire.STATUS_FIELDS, ETA))
    # the writer lays it out (null until a producer passes it) ...
    assert wire.status_document({})["update"]["eta"] is None
    assert wire.status_document({"update.eta": 90})["update"]["eta"] == 90
    assert build_report(**REPORT, more={"update.eta": 90})["update"]["eta"] == 90  # what nodes call
    # ... fixtures carry its sample, the reader keeps it, and a column shows it
    assert wire.sample_document("n1")["update"]["eta"] == 0
    model = FleetModel()
    apply(model, "n1", wire.sample_document("n1", eta=90))
    column = field_column("update.eta")
    row = model.rows["n1"]
    assert row.error is None and row.field("update.eta") == 90
    assert (column.title, column.text(row)) == ("eta", "90")
    # hostile data: the row is UNREADABLE and the problem names the new field
    apply(model, "n2", wire.sample_document("n2", eta="soon"))
    bad = model.rows["n2"]
    assert bad.error == f"{status_key('n2')}: field update.eta is 'soon', expected an integer within int64"
    assert column.text(bad) == "-"


@pytest.mark.parametrize("eta", [0, 2**63 - 1, None])
def test_fast_and_careful_readers_agree_on_an_extended_table(
    monkeypatch: pytest.MonkeyPatch, eta: object
) -> None:
    monkeypatch.setattr(wire, "STATUS_FIELDS", (*wire.STATUS_FIELDS, ETA))
    data = wire.sample_document("n1", eta=eta)
    fast = _well_formed_report(json.dumps(data).encode())
    careful, problem = _checked_report(data, "k")
    assert fast is not None and problem is None and fast == careful
    assert fast.extra == {"update.eta": eta}


def test_an_out_of_range_new_field_is_refused_by_the_fast_path_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "STATUS_FIELDS", (*wire.STATUS_FIELDS, ETA))
    raw = json.dumps(wire.sample_document("n1", eta=2**63)).encode()
    report, problem = parse_node_status(raw, "k")
    assert report.extra == {"update.eta": None}
    assert problem == "k: field update.eta is an integer of 19 digits, expected an integer within int64"


def test_the_writer_and_the_table_refuse_what_they_cannot_use() -> None:
    with pytest.raises(KeyError, match=r"update\.etaa"):
        wire.status_document({"update.etaa": 1})
    with pytest.raises(KeyError, match="etaa"):
        wire.sample_document("n1", etaa=1)
    with pytest.raises(KeyError, match=r"update\.eta"):
        field_column("update.eta")
    with pytest.raises(ValueError, match="unknown kind"):
        wire.check_table((wire.Field("x", "float", None, 0),))
    with pytest.raises(ValueError, match="section"):
        wire.check_table((wire.Field("status.x", wire.STR, None, ""),))
    with pytest.raises(ValueError, match="used twice"):
        wire.check_table(
            (wire.Field("version", wire.STR, None, ""), wire.Field("update.version", wire.STR, None, ""))
        )
