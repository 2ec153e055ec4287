"""Property tests: whatever arrives, parse_request / parse_response answer with a result or OmahaParseError,
never another exception, and quickly. Inputs are derived from the real update_engine request."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from coreroll.omaha.codes import ACCEPTED_EVENTS, APP_ID
from coreroll.omaha.protocol import (
    AppResponse,
    OmahaEvent,
    OmahaParseError,
    OmahaRequest,
    ResponseInfo,
    UpdateOffer,
    build_request,
    build_response,
    parse_request,
    parse_response,
)
from tests.omaha.fixtures import UPDATE_ENGINE_REQUEST, edit_lists, fuzz_settings, mutate

FUZZ = fuzz_settings(150)
TIME_BOUND = 0.25  # seconds per parse, far above the ~0.1 ms a real request takes

# Fragments an attacker (or a broken proxy) would splice in.
NASTY = [
    b"<",
    b">",
    b"&",
    b'"',
    b"'",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"&#0;",
    b"&#x110000;",
    b"&amp;",
    b"&lol;",
    b"]]>",
    b"<![CDATA[x]]>",
    b"<!-- c -->",
    b"<?pi x?>",
    b"<!DOCTYPE r>",
    b'<!ENTITY e "x">',
    b'<event eventtype="3" eventresult="2"/>',
    b'<event eventtype="99" eventresult="1"/>',
    b'<event eventtype="3" eventresult="0" errorcode="-1"/>',
    b'<app appid="x" machineid="y"/>',
    b'xmlns="urn:x"',
    b'xmlns:a="urn:a" a:b="c"',
    "ü€𝄞".encode(),
    b"\r\n",
    b"    " * 8,
]


def _check_request(body: bytes) -> None:
    started = time.perf_counter()
    try:
        result = parse_request(body)
    except OmahaParseError as err:
        reason = str(err)
        assert reason and len(reason) <= 160 and "\n" not in reason
    else:
        assert isinstance(result, OmahaRequest) and result.apps
        for app in result.apps:
            assert app.appid  # machineid may be "" (accepted as Nebraska does)
            assert all((e.event_type, e.result) in ACCEPTED_EVENTS for e in app.events)
    assert time.perf_counter() - started < TIME_BOUND


def _check_response(body: bytes) -> None:
    started = time.perf_counter()
    try:
        info = parse_response(body)
    except OmahaParseError as err:
        assert err.code in (30, 31, 34)
    else:
        assert isinstance(info, ResponseInfo)
        assert info.status in ("ok", "noupdate")
        if info.offer is not None:
            assert info.offer.size > 0 and info.offer.package_name and info.offer.sha256_b64
    assert time.perf_counter() - started < TIME_BOUND


edits = edit_lists(len(UPDATE_ENGINE_REQUEST), NASTY, chunk_size=8, max_edits=6)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(body: bytes) -> None:
    _check_request(body)


@FUZZ
@given(st.integers(min_value=0, max_value=len(UPDATE_ENGINE_REQUEST)))
def test_truncated_request(cut: int) -> None:
    _check_request(UPDATE_ENGINE_REQUEST[:cut])


@FUZZ
@given(edits)
def test_mutated_request(ops: list[tuple[str, int, bytes]]) -> None:
    _check_request(mutate(UPDATE_ENGINE_REQUEST, ops))


# Every attribute of the real request, with its value replaced by anything (raw bytes or text).
ATTRIBUTES = [
    b'protocol="3.0"',
    b'appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"',
    b'version="3975.2.1"',
    b'track="stable"',
    b'machineid="9ce7a919806c4f3785eb6d260345ac4a"',
    b'oem="ami"',
    b'board="amd64-usr"',
    b'eventtype="3"',
    b'eventresult="2"',
    b'previousversion=""',
]
attribute_values = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=32).map(str.encode),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b" 1", b"1 ", b"+1", b"0x3", b"3.0", rb"\u0033", b"&#51;", b"\xef\xbc\x93"]),
)


@FUZZ
@given(st.sampled_from(ATTRIBUTES), attribute_values)
def test_request_with_one_attribute_value_replaced(attribute: bytes, value: bytes) -> None:
    name = attribute.split(b"=", 1)[0]
    _check_request(UPDATE_ENGINE_REQUEST.replace(attribute, name + b'="' + value + b'"', 1))


@FUZZ
@given(attribute_values)
def test_errorcode_values(value: bytes) -> None:
    event = b'<event eventtype="3" eventresult="0" errorcode="' + value + b'"></event>'
    _check_request(
        UPDATE_ENGINE_REQUEST.replace(
            b'<event eventtype="3" eventresult="2" previousversion=""></event>', event
        )
    )


@FUZZ
@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=3))
def test_repeated_and_nested_elements(count: int, depth: int) -> None:
    inner = b'<event eventtype="13" eventresult="1"></event>' * count
    for _ in range(depth * 100):  # up to 300 levels: past libxml2's 256 limit
        inner = b"<x>" + inner + b"</x>"
    _check_request(UPDATE_ENGINE_REQUEST.replace(b"</app>", inner + b"</app>"))


# XML 1.0 Char production minus tab/newline (attribute normalisation turns those into spaces).
xml_text = st.text(
    st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\t\n\x0b\x0c\ufffe\uffff", min_codepoint=0x20
    )
    | st.just("\r"),
    max_size=24,
)


@FUZZ
@given(
    version=xml_text,
    track=xml_text,
    machineid=st.text("0123456789abcdef", min_size=1, max_size=32),
    bootid=xml_text,
    oem=xml_text,
    event=st.sampled_from(sorted(ACCEPTED_EVENTS)),
    errorcode=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_built_requests_round_trip(
    version: str, track: str, machineid: str, bootid: str, oem: str, event: tuple[int, int], errorcode: int
) -> None:
    sent = OmahaEvent(event[0], event[1], errorcode if event[1] != 1 else None)
    body = build_request(
        version=version,
        track=track,
        machineid=machineid,
        bootid=bootid,
        oem=oem,
        oemversion="",
        alephversion="",
        board="amd64-usr",
        ping=False,
        updatecheck=False,
        events=[sent],
    )
    app = parse_request(body).apps[0]
    assert (app.version, app.track, app.machineid, app.bootid, app.oem) == (
        version,
        track,
        machineid,
        bootid,
        oem,
    )
    assert app.events == [sent]


RESPONSE = build_response(
    [
        AppResponse(
            APP_ID,
            updatecheck=UpdateOffer(
                "3975.2.2", "https://u.example/p", "update.gz", 1234, "c2hhMjU2", "c2hhMQ=="
            ),
            ping=True,
            event_count=1,
        )
    ],
    elapsed_seconds=0,
)


@FUZZ
@given(edit_lists(len(RESPONSE), NASTY, chunk_size=8, max_edits=6))
def test_mutated_response(ops: list[tuple[str, int, bytes]]) -> None:
    _check_response(mutate(RESPONSE, ops))


@FUZZ
@given(st.integers(min_value=0, max_value=len(RESPONSE)))
def test_truncated_response(cut: int) -> None:
    _check_response(RESPONSE[:cut])
