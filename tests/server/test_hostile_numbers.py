"""Numbers from the network, against the real server: huge digit strings, non-ASCII digits ("²",
which str.isdigit() accepts and int() refuses; "٣", which int() accepts) and values past what the
database holds are answered with a clear 4xx naming the input, never a 500 or an aborted stream."""

from __future__ import annotations

import httpx
import pytest

from coreroll.omaha.protocol import OmahaEvent
from coreroll.server.runner import RunningServer
from tests.server.helpers import HTTP, call, check_status, get, omaha, post, publish, read_feed, request_xml

pytestmark = pytest.mark.slow

HUGE = "9" * 5000
MACHINE = "0123456789abcdef0123456789abcdef"


def test_omaha_version_of_5000_digits_is_400_naming_the_attribute(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    publish(server, "4000.0.0")
    head = get(server, "/api/v1/info")["feed_id"]
    for body in (
        request_xml(MACHINE, HUGE),
        request_xml(MACHINE, f"1.{HUGE}"),
        request_xml(MACHINE, "3999.0.0", events=[OmahaEvent(3, 2, None, HUGE)]),
    ):
        reply = post(server.url, body)
        assert reply.status_code == 400, reply.text[:200]
        assert reply.text.startswith("bad omaha request: ") and "version" in reply.text
        assert len(reply.text) < 300
    assert get(server, "/api/v1/info")["feed_id"] == head  # nothing recorded
    assert check_status(omaha(server.url, request_xml(MACHINE, "3999.0.0"))) == "ok"


def test_omaha_event_numbers_out_of_bounds_are_400(sqlite_server: RunningServer) -> None:
    good = request_xml(MACHINE, "3999.0.0", events=[OmahaEvent(3, 0, 10, None)])
    for attr, value in (("eventtype", HUGE), ("eventresult", "²"), ("errorcode", HUGE), ("errorcode", "١٠")):
        old = {
            "eventtype": b'eventtype="3"',
            "eventresult": b'eventresult="0"',
            "errorcode": b'errorcode="10"',
        }
        body = good.replace(old[attr], f'{attr}="{value}"'.encode())
        assert body != good
        reply = post(sqlite_server.url, body)
        assert reply.status_code == 400 and attr in reply.text and len(reply.text) < 300, reply.text[:200]


def test_version_comparison_survives_any_digit_run() -> None:
    from coreroll.server.versions import is_newer, version_key

    assert is_newer(HUGE, "4000.0.0") and not is_newer("4000.0.0", HUGE)
    assert is_newer(f"1.{HUGE}", f"1.{HUGE[:-1]}")
    assert version_key("1.007") == version_key("1.7") and is_newer("10.0", "9.9")
    assert version_key("1.²") != version_key("1.2")  # not a digit: compared as text, no crash


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_range_with_huge_numbers_is_answered_by_the_rfc(sqlite_server: RunningServer, method: str) -> None:
    release = publish(sqlite_server, "4000.0.0")
    url, size = release["url"], release["size"]
    beyond = HTTP.request(method, url, headers={"Range": f"bytes={HUGE}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    if method == "GET":
        assert "beyond" in beyond.json()["error"] and len(beyond.text) < 300
    whole = HTTP.get(url).content
    # A last position past the end is clamped; a suffix longer than the file is the whole file.
    to_end = HTTP.request(method, url, headers={"Range": f"bytes=10-{HUGE}"})
    assert to_end.status_code == 206 and to_end.headers["content-range"] == f"bytes 10-{size - 1}/{size}"
    suffix = HTTP.request(method, url, headers={"Range": f"bytes=-{HUGE}"})
    assert suffix.status_code == 206 and suffix.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    if method == "GET":
        assert to_end.content == whole[10:] and suffix.content == whole
    # Not ASCII digits: the header is ignored, as RFC 9110 allows for an invalid Range.
    odd = HTTP.request(method, url, headers={"Range": "bytes=²-".encode()})
    assert odd.status_code == 200


FEED_CASES = {
    "superscript two": "²",
    "arabic-indic digits": "١٢",
    "5000 digits": HUGE,
    "10**30": str(10**30),
    "negative": "-1",
    "2**63 (past SQLite's INTEGER)": str(2**63),
}


@pytest.mark.parametrize("where", ["header", "query"])
@pytest.mark.parametrize("case", sorted(FEED_CASES))
def test_feed_position_out_of_range_is_400(server: RunningServer, where: str, case: str) -> None:
    sqlite_server = server  # and PostgreSQL
    value = FEED_CASES[case]
    name = "Last-Event-ID" if where == "header" else "after"
    headers = {"Last-Event-ID": value.encode()} if where == "header" else {}
    params = {"after": value} if where == "query" else {}
    with httpx.stream("GET", f"{sqlite_server.url}/api/v1/feed", headers=headers, params=params,
                      timeout=10) as reply:  # fmt: skip
        reply.read()
    assert reply.status_code == 400, reply.text[:200]
    error = reply.json()["error"]
    assert name in error and len(error) < 300
    assert get(sqlite_server, "/api/v1/info")["server"] == "coreroll"  # still serving


def test_feed_position_past_the_head_resets_to_the_head(server: RunningServer) -> None:
    head = get(server, "/api/v1/info")["feed_id"]
    first = read_feed(server.url, head + 1000, until=lambda evs: True)[0]
    assert first["event"] == "reset" and first["data"]["feed_id"] == head
    assert "do not exist" in first["data"]["reason"]


def test_ids_past_the_database_id_column_are_400(server: RunningServer) -> None:
    """PostgreSQL's SERIAL ends at 2^31-1 (asyncpg refused a bigger parameter: a 500), SQLite's at 2^63-1."""
    past = 2**31 if server.settings.database_url.startswith("postgres") else 2**63
    for path, name, params, headers in (
        ("/api/v1/activity", "after", {"after": str(past)}, {}),
        ("/api/v1/feed", "after", {"after": str(past)}, {}),
        ("/api/v1/feed", "Last-Event-ID", {}, {"Last-Event-ID": str(past)}),
    ):
        reply = HTTP.get(f"{server.url}{path}", params=params, headers=headers)
        assert reply.status_code == 400 and name in reply.json()["error"], (path, reply.text[:200])
        assert f"to {past - 1})" in reply.json()["error"]
    assert HTTP.get(f"{server.url}/api/v1/activity", params={"after": str(past - 1)}).status_code == 200


def test_query_numbers_are_ascii_and_bounded(sqlite_server: RunningServer) -> None:
    for path, name, value in (
        ("/api/v1/activity", "after", "²"),
        ("/api/v1/activity", "after", "١"),
        ("/api/v1/activity", "after", HUGE),
        ("/api/v1/activity", "after", str(2**63)),
        ("/api/v1/activity", "limit", "1_0"),
        ("/api/v1/instances", "offset", HUGE),
        ("/api/v1/snapshot", "limit", "+5"),
        ("/api/v1/instances/x/history", "limit", "٣"),
    ):
        reply = HTTP.get(f"{sqlite_server.url}{path}", params={name: value})
        assert reply.status_code == 400, (path, name, value, reply.text[:200])
        assert name in reply.json()["error"] and len(reply.json()["error"]) < 300


def test_admin_json_with_a_huge_integer_is_400(sqlite_server: RunningServer) -> None:
    raw = f'{{"max_updates_per_period": {HUGE}}}'.encode()
    reply = HTTP.put(f"{sqlite_server.url}/api/v1/groups/stable/policy", content=raw,
                     headers={"Authorization": f"Bearer {sqlite_server.token}"})  # fmt: skip
    assert reply.status_code == 400 and len(reply.json()["error"]) < 300
    reply = call(sqlite_server, "POST", "/api/v1/releases", {"synthetic": True, "image_size": 10**30})
    assert reply.status_code == 400 and "image_size" in reply.json()["error"]
