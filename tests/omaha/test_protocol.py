"""Omaha protocol: the exact update_engine request, responses update_engine accepts, and bad input."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import time

import pytest
from lxml import etree

from coreroll.omaha import protocol
from coreroll.omaha.codes import (
    APP_ID,
    APP_STATUS_UNKNOWN_APPLICATION,
    ErrorCode,
    EventResult,
    EventType,
    is_os_app,
    same_app_id,
)
from coreroll.omaha.protocol import (
    MAX_BODY,
    AppResponse,
    ExtraPackage,
    OmahaApp,
    OmahaEvent,
    OmahaParseError,
    UpdateOffer,
    app_response,
    build_request,
    build_response,
    parse_request,
    parse_response,
    unknown_app_response,
)
from coreroll.omaha.xmlsafe import parse_untrusted_xml
from tests.omaha.fixtures import UPDATE_ENGINE_NO_MACHINE_ID, UPDATE_ENGINE_REQUEST, with_app_body

CLIENT_FIELDS = dict(
    version="3975.2.1",
    track="stable",
    machineid="9ce7a919806c4f3785eb6d260345ac4a",
    bootid="{3c9c0e11-...}",
    oem="ami",
    oemversion="...",
    alephversion="3510.2.0",
    board="amd64-usr",
    installsource="scheduler",
)
OFFER = UpdateOffer(
    version="3975.2.2",
    codebase_url="https://updates.example/packages/3975.2.2",
    package_name="flatcar_production_update.gz",
    size=465881871,
    sha256_b64="LIkAKVZY2EJFiwTmltiJZLFLA5xT/FodbjVgqkyF/y8=",
    sha1_b64="r3nufcxgMTZaxYEq6q9x8W2pL3c=",
)


def test_update_engine_request_parses_into_every_field() -> None:
    request = parse_request(UPDATE_ENGINE_REQUEST)
    assert request.protocol == "3.0"
    assert request.updater_version == "update_engine-0.4.10"
    assert request.installsource == "scheduler"
    assert request.ismachine is True
    assert (request.os_platform, request.os_version, request.os_sp) == (
        "CoreOS",
        "Chateau",
        "3975.2.1_x86_64",
    )
    [app] = request.apps
    assert app.appid == APP_ID
    assert app.version == "3975.2.1"
    assert app.track == "stable"
    assert app.bootid == "{3c9c0e11-...}"
    assert app.machineid == "9ce7a919806c4f3785eb6d260345ac4a"
    assert (app.oem, app.oemversion, app.alephversion) == ("ami", "...", "3510.2.0")
    assert app.board == "amd64-usr"
    assert app.machinealias == ""
    assert app.ping is True and app.updatecheck is True
    assert app.events == [OmahaEvent(3, 2, None, "")]


def test_build_request_is_byte_identical_to_update_engine() -> None:
    body = build_request(**CLIENT_FIELDS, ping=True, updatecheck=True, events=[OmahaEvent(3, 2, None, "")])
    assert body == UPDATE_ENGINE_REQUEST


def test_ping_only_and_event_only_shapes() -> None:
    ping_only = build_request(**CLIENT_FIELDS, ping=True, updatecheck=False, events=[])
    assert ping_only == with_app_body(b'        <ping active="1"></ping>\n')
    event_only = build_request(**CLIENT_FIELDS, ping=False, updatecheck=False, events=[OmahaEvent(13, 1)])
    assert event_only == with_app_body(b'        <event eventtype="13" eventresult="1"></event>\n')
    error = build_request(**CLIENT_FIELDS, ping=False, updatecheck=False, events=[OmahaEvent(3, 0, 12)])
    assert error == with_app_body(b'        <event eventtype="3" eventresult="0" errorcode="12"></event>\n')
    parsed = parse_request(event_only).apps[0]
    assert (parsed.ping, parsed.updatecheck, parsed.events) == (False, False, [OmahaEvent(13, 1)])


def test_rollback_check_and_flagged_errorcode_round_trip() -> None:
    rollback = OmahaEvent(EventType.UpdateComplete, EventResult.Error, ErrorCode.RollbackError)
    body = build_request(**CLIENT_FIELDS, events=[rollback])
    assert b'<event eventtype="3" eventresult="0" errorcode="44"></event>' in body
    assert parse_request(body).apps[0].events == [OmahaEvent(3, 0, 44, None)]
    # update_engine prints codes with %d, so DevModeFlag (bit 31) arrives negative; we read it unsigned.
    dev = OmahaEvent(3, 0, (1 << 31) | 34)
    body = build_request(**CLIENT_FIELDS, ping=False, updatecheck=False, events=[dev])
    assert b'errorcode="-2147483614"' in body
    assert parse_request(body).apps[0].events[0].errorcode == (1 << 31) | 34


def test_values_are_escaped_and_survive_a_round_trip() -> None:
    fields = {**CLIENT_FIELDS, "oem": 'a"<b>&c', "track": "stäble"}
    body = build_request(**fields)
    assert b"st&#xE4;ble" in body and b"a&quot;&lt;b&gt;&amp;c" in body
    app = parse_request(body).apps[0]
    assert (app.oem, app.track) == ('a"<b>&c', "stäble")


def test_offer_round_trips_through_update_engine_rules() -> None:
    app = parse_request(UPDATE_ENGINE_REQUEST).apps[0]
    body = build_response([app_response(app, OFFER, poll_interval=3600)], elapsed_seconds=42)
    assert b'<daystart elapsed_seconds="42"/>' in body
    assert b'<ping status="ok"/>' in body and body.count(b'<event status="ok"/>') == 1
    info = parse_response(body)
    assert info.status == "ok"
    assert info.offer == OFFER
    assert info.poll_interval == 3600
    assert info.payload_urls == ("https://updates.example/packages/3975.2.2/flatcar_production_update.gz",)
    assert info.disable_payload_backoff is True


def test_extra_packages_carry_hash_sha256_in_hex_as_ue_rs_reads_it() -> None:
    """ue-rs (omaha/src/response.rs) reads ``hash_sha256`` with ``sha256_from_hex_str``: hex, 64 digits;
    a base64 value there makes download_sysext reject the whole response. ``hash`` stays base64 SHA-1,
    the postinstall ``sha256`` base64 SHA-256 (what update_engine compares)."""
    data = b"an oem sysext payload"
    extra = ExtraPackage(
        "oem-azure.gz",
        len(data),
        base64.b64encode(hashlib.sha256(data).digest()).decode(),
        base64.b64encode(hashlib.sha1(data).digest()).decode(),
    )
    app = parse_request(UPDATE_ENGINE_REQUEST).apps[0]
    offer = dataclasses.replace(OFFER, extras=(extra,))
    root = etree.fromstring(build_response([app_response(app, offer)]))
    main, listed = root.findall("app/updatecheck/manifest/packages/package")
    assert listed.get("hash_sha256") == hashlib.sha256(data).hexdigest()
    assert re.fullmatch("[0-9a-f]{64}", listed.get("hash_sha256"))
    assert listed.get("hash") == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert main.get("hash_sha256") is None and main.get("hash") == OFFER.sha1_b64
    assert root.find("app/updatecheck/manifest/actions/action").get("sha256") == OFFER.sha256_b64


def test_noupdate_event_acks_and_no_updatecheck_when_not_asked() -> None:
    check = parse_request(UPDATE_ENGINE_REQUEST).apps[0]
    info = parse_response(build_response([app_response(check, "noupdate")]))
    assert (info.status, info.offer, info.poll_interval) == ("noupdate", None, None)
    event_only = parse_request(with_app_body(b'        <event eventtype="14" eventresult="1"></event>\n'))
    body = build_response([app_response(event_only.apps[0], "noupdate")])
    assert b"updatecheck" not in body and b"<ping" not in body
    assert body.count(b'<event status="ok"/>') == 1


def test_unknown_application_answer_is_an_invalid_response_for_the_client() -> None:
    body = with_app_body(b'        <ping active="1"></ping>\n        <updatecheck></updatecheck>\n')
    app = parse_request(body.replace(APP_ID.encode(), b"{00000000-0000-0000-0000-000000000001}")).apps[0]
    assert not is_os_app(app.appid)
    reply = build_response([unknown_app_response(app)])
    assert f'status="{APP_STATUS_UNKNOWN_APPLICATION}"'.encode() in reply
    assert b'<updatecheck status="error-internal"/>' in reply
    with pytest.raises(OmahaParseError) as err:
        parse_response(reply)
    assert err.value.code == ErrorCode.OmahaResponseInvalid


def test_app_ids_compare_without_braces_or_case() -> None:
    assert same_app_id(APP_ID, "E96281A6-D1AF-4BDE-9A0A-97B76E56DC57")
    assert is_os_app("e96281a6-d1af-4bde-9a0a-97b76e56dc57")
    assert not same_app_id(APP_ID, "{e96281a6-d1af-4bde-9a0a-97b76e56dc58}")


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (b"", ErrorCode.OmahaRequestEmptyResponseError, "empty"),
        (b"<response><app>", ErrorCode.OmahaRequestXMLParseError, "malformed XML"),
        (b'<response><app><updatecheck status="error-internal"/></app></response>', 34, "error-internal"),
        (b"<response><app><updatecheck/></app></response>", 34, "no status"),
        (b"<response><app/></response>", 34, "no /response/app/updatecheck"),
        (b'<response><app><updatecheck status="ok"/></app></response>', 34, "no manifest"),
    ],
)
def test_parse_response_reports_update_engine_error_codes(body: bytes, code: int, reason: str) -> None:
    with pytest.raises(OmahaParseError) as err:
        parse_response(body)
    assert err.value.code == code
    assert reason in str(err.value)


def test_parse_response_follows_update_engine_field_rules() -> None:
    good = build_response([AppResponse(APP_ID, updatecheck=OFFER)]).decode()
    size = f'size="{OFFER.size}"'
    # sscanf %i: hex sizes are read as hex, and anything not positive is refused.
    assert parse_response(good.replace(size, 'size="0x10"').encode()).offer.size == 16  # type: ignore[union-attr]
    for bad, reason in [
        (good.replace(size, 'size="0"'), "size"),
        (good.replace(size, 'size="-5"'), "size"),
        (good.replace(f'codebase="{OFFER.codebase_url}"', 'codebase=""'), "empty codebase"),
        (good.replace('name="flatcar_production_update.gz"', 'name=""'), "empty name"),
        (good.replace('event="postinstall"', 'event="preinstall"'), "no postinstall"),
        (good.replace(f'sha256="{OFFER.sha256_b64}"', 'sha256=""'), "empty sha256"),
    ]:
        with pytest.raises(OmahaParseError, match=reason) as err:
            parse_response(bad.encode())
        assert err.value.code == ErrorCode.OmahaResponseInvalid
    # Numbers of any length neither crash nor wrap: sizes saturate as strtoll does, a
    # PollInterval that is not a 32-bit integer reads as 0 (base::StringToInt).
    huge = "9" * 5000
    assert parse_response(good.replace(size, f'size="{huge}"').encode()).offer.size == 2**63 - 1  # type: ignore[union-attr]
    assert parse_response(good.replace(size, f'size="0x{"f" * 5000}"').encode()).offer.size == 2**63 - 1  # type: ignore[union-attr]
    with pytest.raises(OmahaParseError, match="size"):
        parse_response(good.replace(size, f'size="-{huge}"').encode())
    polled = build_response([AppResponse(APP_ID, updatecheck="noupdate", poll_interval=60)]).decode()
    assert parse_response(polled.encode()).poll_interval == 60
    for bad_poll in (huge, "²", str(2**31)):
        assert parse_response(polled.replace('"60"', f'"{bad_poll}"').encode()).poll_interval is None
    # The postinstall action need not be first; only the first package counts.
    two_actions = good.replace("<actions>", '<actions><action event="update" sha256=""/>')
    assert parse_response(two_actions.encode()).offer == OFFER


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE request [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<request protocol="3.0"><app appid="x" machineid="m">&lol9;</app></request>\n'
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<request protocol="3.0"><app appid="x" machineid="&xxe;"/></request>'
)
EXTERNAL_DTD = (
    b'<!DOCTYPE request SYSTEM "http://127.0.0.1:9/omaha.dtd">\n' + UPDATE_ENGINE_REQUEST.split(b"\n", 1)[1]
)
# The billion laughs again, its markup in UTF-7: no "<!DOCTYPE" bytes for the scan to find, and a
# parser that trusted the declaration would read a DTD declaring ten entities.
UTF7_LAUGHS = b'<?xml version="1.0" encoding="UTF-7"?>' + (
    BILLION_LAUGHS.split(b"\n", 1)[1].replace(b"<", b"+ADw-").replace(b">", b"+AD4-").replace(b"&", b"+ACY-")
)
PLAIN_DTD = b"<!DOCTYPE request>\n" + UPDATE_ENGINE_REQUEST.split(b"\n", 1)[1]
ONE_MIB = UPDATE_ENGINE_REQUEST.replace(b"</app>", b" " * (1024 * 1024) + b"</app>")

BAD_REQUESTS = {
    "malformed XML": (UPDATE_ENGINE_REQUEST[:-12], "malformed XML"),
    "not XML": (b"machineid=1", "not XML"),
    "empty": (b"  \n", "empty"),
    "not UTF-8": (UPDATE_ENGINE_REQUEST.replace(b"ami", b"\xff\xfe"), "not UTF-8"),
    "UTF-16": ('<?xml version="1.0" encoding="UTF-16"?><request/>'.encode("utf-16"), "not UTF-8"),
    "plain DTD": (PLAIN_DTD, "DOCTYPE"),
    "external DTD": (EXTERNAL_DTD, "DOCTYPE"),
    "XXE": (XXE, "DOCTYPE"),
    "billion laughs": (BILLION_LAUGHS, "DOCTYPE"),
    "DTD hidden by UTF-7": (UTF7_LAUGHS, "malformed XML"),
    "undeclared entity": (UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b'oem="&lol;"'), "malformed XML"),
    "1 MiB body": (ONE_MIB, f"over the {MAX_BODY}-byte limit"),
    "wrong protocol": (
        UPDATE_ENGINE_REQUEST.replace(b'protocol="3.0"', b'protocol="2.0"'),
        "protocol version '2.0'",
    ),
    "no protocol": (UPDATE_ENGINE_REQUEST.replace(b'protocol="3.0" ', b""), "no protocol"),
    "wrong root": (b"<response protocol='3.0'/>", "expected <request>"),
    "no app": (b"<request protocol='3.0'><os/></request>", "no <app>"),
    "missing appid": (
        UPDATE_ENGINE_REQUEST.replace(b'appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"', b""),
        "missing appid",
    ),
    "bad event pair": (
        UPDATE_ENGINE_REQUEST.replace(b'eventtype="3" eventresult="2"', b'eventtype="5" eventresult="1"'),
        "event 5/1 is not an accepted",
    ),
    "non-integer event": (
        UPDATE_ENGINE_REQUEST.replace(b'eventresult="2"', b'eventresult="two"'),
        "not an integer",
    ),
    "event without result": (UPDATE_ENGINE_REQUEST.replace(b' eventresult="2"', b""), "required"),
    "huge errorcode": (
        with_app_body(b'<event eventtype="3" eventresult="0" errorcode="99999999999"/>'),
        "32-bit range",
    ),
    "too many events": (
        with_app_body(b'<event eventtype="13" eventresult="1"/>' * 17),
        "more than 16 events",
    ),
    "deep nesting": (
        UPDATE_ENGINE_REQUEST.replace(b"</app>", b"<x>" * 400 + b"</x>" * 400 + b"</app>"),
        "malformed XML",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_refused_quickly_with_a_short_reason(case: str) -> None:
    body, reason = BAD_REQUESTS[case]
    started = time.perf_counter()
    with pytest.raises(OmahaParseError) as err:
        parse_request(body)
    elapsed = time.perf_counter() - started
    assert reason in str(err.value)
    assert len(str(err.value)) <= 160 and "\n" not in str(err.value) and "Traceback" not in str(err.value)
    assert elapsed < 0.5, f"{case} took {elapsed:.3f}s"
    # The parser is not left in a bad state: the next valid request parses normally.
    assert parse_request(UPDATE_ENGINE_REQUEST).apps[0].machineid == "9ce7a919806c4f3785eb6d260345ac4a"
    # Nebraska accepts machineid="" (and none): the server decides what to register it as.
    assert parse_request(UPDATE_ENGINE_NO_MACHINE_ID).apps[0].machineid == ""
    assert parse_request(UPDATE_ENGINE_REQUEST.replace(b' machineid="9ce7a919806c4f3785eb6d260345ac4a"', b""))


def test_a_declared_encoding_never_changes_what_the_dtd_scan_saw() -> None:
    # Read as UTF-7 (what the declaration asks for), the body has a DOCTYPE and entities.
    assert b"<!" not in UTF7_LAUGHS and "<!DOCTYPE request [" in UTF7_LAUGHS.decode("utf-7")
    for parse in (parse_request, lambda body: parse_untrusted_xml(body, MAX_BODY)):
        with pytest.raises(OmahaParseError, match="malformed XML: Start tag expected"):
            parse(UTF7_LAUGHS)
    ascii_latin1 = UPDATE_ENGINE_REQUEST.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    assert ascii_latin1 != UPDATE_ENGINE_REQUEST
    assert parse_request(ascii_latin1) == parse_request(UPDATE_ENGINE_REQUEST)


def test_any_event_pair_is_accepted_when_the_server_asks_for_it() -> None:
    body = UPDATE_ENGINE_REQUEST.replace(b'eventtype="3" eventresult="2"', b'eventtype="3" eventresult="9"')
    assert parse_request(body, accept_any_event=True).apps[0].events[0].result == 9


def test_body_at_the_limit_is_accepted() -> None:
    padding = MAX_BODY - len(UPDATE_ENGINE_REQUEST)
    body = UPDATE_ENGINE_REQUEST.replace(b"</app>", b" " * padding + b"</app>")
    assert len(body) == MAX_BODY
    assert parse_request(body).apps[0].track == "stable"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("3", 3), ("0000000003", 3), (" 3", 3), ("+3", 3), ("2147483647", 2**31 - 1),
     ("2147483648", None), ("٣", None), ("3_0", None), ("", None)],
)  # fmt: skip
def test_event_numbers_are_plain_ascii_32_bit_integers(value: str, parsed: int | None) -> None:
    body = UPDATE_ENGINE_REQUEST.replace(b'eventtype="3"', f'eventtype="{value}"'.encode())
    if parsed is None:
        with pytest.raises(OmahaParseError, match="eventtype="):
            parse_request(body, accept_any_event=True)
    else:
        assert parse_request(body, accept_any_event=True).apps[0].events[0].event_type == parsed


def test_noupdate_answers_are_the_same_bytes_every_time_and_the_cache_stays_bounded() -> None:
    app = parse_request(UPDATE_ENGINE_REQUEST).apps[0]
    expected = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="coreroll">'
        b'<daystart elapsed_seconds="7"/><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok">'
        b'<ping status="ok"/><updatecheck status="noupdate" PollInterval="60"/><event status="ok"/></app>'
        b"</response>\n"
    )
    for _ in range(3):  # built, then from the cache
        assert (
            build_response([app_response(app, "noupdate", poll_interval=60)], elapsed_seconds=7) == expected
        )
    for n in range(1000):  # app ids come from requests: the cache does not grow with them
        other = OmahaApp(f"{{app-{n}}}", "1.0.0", "stable", "", "m", updatecheck=True)
        assert f'appid="{{app-{n}}}"'.encode() in build_response([unknown_app_response(other)])
    assert len(protocol._app_xml_cache) <= protocol._APP_XML_CACHED
