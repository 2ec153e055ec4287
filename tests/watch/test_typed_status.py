"""The msgspec fast path and the careful field-by-field reader must accept exactly the same
status documents, and give the same report for them (coreroll.watch.typed_status)."""

from __future__ import annotations

import json
from typing import Any

from coreroll.watch.parse import _checked_report, _well_formed_report, parse_node_status
from coreroll.wire import status as wire

ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, 1.0, 2, 2**63 - 1, 2**63, -(2**63) - 1, 1e300, -1e300,
    "", "x", "0.0.0.0", "2026-09-21T13:00:00Z", "2026-13-45", [], {}, [{"label": "USR-A"}],
    [{"label": 1}], [{"label": "USR-B", "priority": True}], [{"label": "USR-A", "tries": 2**64}],
    {"id": "01", "action": "check", "at": "2026-09-21T13:00:00Z"},
]  # fmt: skip


def with_value(doc: dict[str, Any], field: wire.Field, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    (doc[field.section] if field.section else doc)[field.name] = value
    return doc


def test_fast_and_careful_readers_accept_the_same_documents() -> None:
    base = wire.sample_document("n1")
    checked = 0
    for field in wire.STATUS_FIELDS:
        for value in ODD_VALUES:
            doc = with_value(base, field, value)
            fast = _well_formed_report(json.dumps(doc).encode())
            careful, problem = _checked_report(doc, "k")
            assert (fast is not None) == (problem is None), (field.path, value, problem)
            if fast is not None:
                assert fast == careful, (field.path, value)
            checked += 1
    assert checked == len(wire.STATUS_FIELDS) * len(ODD_VALUES)


def test_what_only_pythons_json_reads_still_reads() -> None:
    raw = json.dumps(wire.sample_document("n1")).replace('"progress": 0.0', '"progress": NaN').encode()
    report, problem = parse_node_status(b"\xef\xbb\xbf" + raw, "k")  # a BOM, and NaN
    assert problem == "k: field update.progress is nan, expected a number from 0 to 1"
    assert report.hostname == "host-n1" and report.update_progress is None


def test_a_missing_section_or_field_reads_as_unknown_on_both_paths() -> None:
    doc = wire.sample_document("n1")
    del doc["reboot"], doc["partitions"], doc["hostname"]
    fast = _well_formed_report(json.dumps(doc).encode())
    careful, problem = _checked_report(doc, "k")
    assert fast is not None and problem is None and fast == careful
    assert fast.partitions == () and fast.hostname is None and fast.reboot_strategy is None


def test_a_section_of_the_wrong_type_is_named() -> None:
    sections = sorted({f.section for f in wire.STATUS_FIELDS if f.section is not None})
    for section in sections:
        for value in ODD_VALUES:
            if value is None or type(value) is dict:
                continue
            doc = wire.sample_document("n1")
            doc[section] = value
            raw = json.dumps(doc).encode()
            assert _well_formed_report(raw) is None, (section, value)
            report, problem = parse_node_status(raw, "k")
            assert problem is not None and f"field {section} is " in problem, (section, value)
            assert report.hostname == "host-n1"


def test_a_repeated_key_reads_as_pythons_json_does_the_last_one_wins() -> None:
    raw = json.dumps(wire.sample_document("n1")).encode()
    assert parse_node_status(raw[:-1] + b', "hostname": "second"}', "k") == (
        _checked_report(json.loads(raw[:-1] + b', "hostname": "second"}'), "k")
    )
    report, problem = parse_node_status(b'{"hostname": 5, ' + raw[1:], "k")
    assert problem is None and report.hostname == "host-n1"
