"""What the network sends fits the database, on SQLite and on PostgreSQL (which enforces widths).

An update_engine errorcode with DevModeFlag (bit 31) is stored and shown as sent; an Omaha attribute
or an admin field longer than its column is a 400 naming it and its limit, and nothing is recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coreroll.omaha.client import build_request
from coreroll.omaha.codes import ErrorCodeFlag
from coreroll.omaha.messages import OmahaEvent
from coreroll.server.records import shown_errorcode, stored_errorcode
from coreroll.server.runner import RunningServer
from tests.server.conftest import start
from tests.server.helpers import HTTP, auth, event_xml, get, post, publish, request_xml

MACHINE = "0123456789abcdef0123456789abcdef"
# Every attribute the server stores, with the width its column has.
WIDTHS = {
    "machineid": 64,
    "version": 64,
    "previousversion": 64,
    "track": 255,
    "bootid": 64,
    "oem": 255,
    "oemversion": 255,
    "alephversion": 64,
    "board": 64,
}


def _request(**values: str) -> bytes:
    """update_engine's request with some attributes replaced (``previousversion`` on its 3/2 event)."""
    attrs = {
        "version": "3999.0.0",
        "track": "stable",
        "machineid": MACHINE,
        "bootid": "{b0071d00-0000-4000-8000-000000000000}",
        "oem": "ami",
        "oemversion": "0.1",
        "alephversion": "3510.2.0",
        "board": "amd64-usr",
    }
    previous = values.pop("previousversion", "")
    attrs.update(values)
    return build_request(**attrs, events=[OmahaEvent(3, 2, None, previous)], coreroll_agent=True)


def test_a_dev_mode_errorcode_is_stored_and_shown(server: RunningServer) -> None:
    code = int(ErrorCodeFlag.DevModeFlag) | 10  # 0x8000000A: update_engine sends it as -2147483638
    assert post(server.url, request_xml(MACHINE, "3999.0.0")).status_code == 200
    body = event_xml(MACHINE, "3999.0.0", 3, 0, errorcode=code)
    assert b'errorcode="-2147483638"' in body
    reply = post(server.url, body)
    assert reply.status_code == 200, reply.text
    history = get(server, f"/api/v1/instances/{MACHINE}/history")["history"]
    assert [h["errorcode"] for h in history if h["event"] == "3/0"] == [code]


def test_each_over_long_omaha_attribute_is_400_naming_it(server: RunningServer) -> None:
    publish(server, "4000.0.0")
    head = get(server, "/api/v1/info")["feed_id"]
    for name, width in WIDTHS.items():
        value = "1" * (width + 1)  # digits: also a well-formed version
        reply = post(server.url, _request(**{name: value}))
        assert reply.status_code == 400, (name, reply.status_code, reply.text)
        assert reply.text.startswith("bad omaha request: "), reply.text
        assert f"{name} is over {width} characters" in reply.text, reply.text
    assert get(server, "/api/v1/info")["feed_id"] == head  # nothing recorded
    assert get(server, "/api/v1/instances")["total"] == 0


def test_omaha_attributes_at_their_widths_are_stored(server: RunningServer) -> None:
    track = "t" * WIDTHS["track"]
    created = HTTP.post(f"{server.url}/api/v1/groups", headers=auth(server),
                        json={"id": "wide", "track": track, "name": "n" * 255})  # fmt: skip
    assert created.status_code == 201, created.text
    values = {name: "1" * width for name, width in WIDTHS.items()} | {"track": track}
    reply = post(server.url, _request(**values))
    assert reply.status_code == 200, reply.text
    shown = get(server, f"/api/v1/instances/{values['machineid']}")
    assert shown["group"] == "wide"
    for name in ("version", "oem", "alephversion", "board"):  # the fields the API shows
        assert shown[name] == values[name], name


@pytest.mark.parametrize(
    ("field", "body", "limit"),
    [
        ("name", {"id": "g1", "name": "n" * 256}, 255),
        ("track", {"id": "g2", "track": "t" * 256}, 255),
        ("policy.timezone", {"id": "g3", "policy": {"timezone": "Europe/" + "x" * 300}}, 64),
    ],
)
def test_an_over_long_admin_field_is_400_naming_it(
    server: RunningServer, field: str, body: dict[str, str], limit: int
) -> None:
    before = get(server, "/api/v1/groups")
    head = get(server, "/api/v1/info")["feed_id"]
    reply = HTTP.post(f"{server.url}/api/v1/groups", headers=auth(server), json=body)
    assert reply.status_code == 400, reply.text
    assert f"{field}: at most {limit} characters" in reply.json()["error"]
    assert get(server, "/api/v1/groups") == before
    assert get(server, "/api/v1/info")["feed_id"] == head


def test_an_over_long_time_zone_in_a_policy_change_is_400(server: RunningServer) -> None:
    before = get(server, "/api/v1/groups/stable")
    for zone in ("Europe/" + "x" * 300, "a/" * 3000):
        reply = HTTP.put(f"{server.url}/api/v1/groups/stable/policy", headers=auth(server),
                         json={"timezone": zone})  # fmt: skip
        assert reply.status_code == 400, reply.text
        assert "policy.timezone: at most 64 characters" in reply.json()["error"]
    assert get(server, "/api/v1/groups/stable") == before


def test_errorcodes_written_unsigned_before_are_shown_the_same() -> None:
    """SQLite databases hold DevMode codes written unsigned by earlier servers: both read back alike."""
    code = int(ErrorCodeFlag.DevModeFlag) | 10
    assert stored_errorcode(code) == -2147483638
    assert shown_errorcode(stored_errorcode(code)) == shown_errorcode(code) == code
    assert stored_errorcode(44) == shown_errorcode(44) == 44 and stored_errorcode(None) is None


def test_a_forwarded_for_hop_that_is_no_ip_address_is_not_stored(tmp_path: Path, db_url: str) -> None:
    """Behind a trusted proxy, a junk hop (the client's own header) ends the walk at the proxy."""
    server = start(tmp_path, db_url, trusted_proxies=("127.0.0.1/32",))
    try:
        for machine, forwarded in (
            ("a" * 32, "x" * 100),
            ("b" * 32, "203.0.113.9, " + "y" * 70 + ", 127.0.0.1"),
        ):
            reply = HTTP.post(f"{server.url}/v1/update/", content=request_xml(machine, "3999.0.0"),
                              headers={"X-Forwarded-For": forwarded})  # fmt: skip
            assert reply.status_code == 200, reply.text
            assert get(server, f"/api/v1/instances/{machine}")["ip"] == "127.0.0.1"
    finally:
        server.stop()
