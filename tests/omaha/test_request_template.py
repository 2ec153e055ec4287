"""parse_request reads update_engine's own request shape without libxml2 (request_template): straight
into the request objects in update_engine's attribute order, by the generic rules in any order. Both
must answer exactly what the XML parser path answers, for the shapes real nodes send and for anything
else, and real nodes' requests must take the direct read."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coreroll.omaha import protocol
from coreroll.omaha.messages import OmahaEvent, OmahaParseError, OmahaRequest
from coreroll.omaha.protocol import build_request, parse_request
from coreroll.omaha.request_template import read_in_any_order, read_in_update_engine_order
from tests.omaha.fixtures import (
    UPDATE_ENGINE_ARM64_REQUEST,
    UPDATE_ENGINE_DEFERRED_CHECK,
    UPDATE_ENGINE_NO_MACHINE_ID,
    UPDATE_ENGINE_REQUEST,
    edit_lists,
    fuzz_settings,
    mutate,
    with_app_body,
)

FUZZ = fuzz_settings(300)

Outcome = OmahaRequest | tuple[str, str]


PATHS = ("direct", "any order", "XML parser")


def outcome(body: bytes, path: str) -> Outcome:
    """What parse_request answers when it reads ``body`` on ``path`` or a later one."""
    direct = read_in_update_engine_order if path == "direct" else lambda _text, _any: None
    any_order = read_in_any_order if path != "XML parser" else lambda _text: None
    with (
        mock.patch.object(protocol, "read_in_update_engine_order", direct),
        mock.patch.object(protocol, "read_in_any_order", any_order),
    ):
        try:
            return parse_request(body, accept_any_event=True)
        except OmahaParseError as err:
            return ("refused", str(err))


def assert_same_answer(body: bytes) -> None:
    answers = [outcome(body, path) for path in PATHS]
    assert answers == [answers[2]] * 3, body


def direct(body: bytes, accept_any_event: bool = True) -> OmahaRequest | None:
    return read_in_update_engine_order(body.decode("ascii"), accept_any_event) if body.isascii() else None


REAL_REQUESTS = {
    "update_engine": UPDATE_ENGINE_REQUEST,
    "no machine id": UPDATE_ENGINE_NO_MACHINE_ID,
    "arm64": UPDATE_ENGINE_ARM64_REQUEST,
    "deferred 3/9": UPDATE_ENGINE_DEFERRED_CHECK,
    "event only": with_app_body(
        b'        <event eventtype="3" eventresult="2" previousversion=""></event>\n'
    ),
    "ping only": with_app_body(b'        <ping active="1"></ping>\n'),
    "agent": build_request(
        version="4000.0.0",
        track="beta",
        machineid="m" * 32,
        bootid="{b}",
        oem="",
        oemversion="",
        alephversion="4000.0.0",
        board="amd64-usr",
        events=[OmahaEvent(3, 0, 1073741824 | 5, "")],
        coreroll_agent=True,
    ),
    "syncer": build_request(
        version="0.0.0",
        track="stable",
        machineid="",
        bootid="",
        oem="",
        oemversion="",
        alephversion="",
        board="arm64-usr",
        ping=False,
        multi_manifest_ok=True,
    ),
    "padded": UPDATE_ENGINE_REQUEST.replace(b"<request ", b"<request" + b" " * 9, 1),
    "self-closing": UPDATE_ENGINE_REQUEST.replace(b"></ping>", b"/>").replace(b"></updatecheck>", b" />"),
    "no declaration": UPDATE_ENGINE_REQUEST.split(b"\n", 1)[1],
}


@pytest.mark.parametrize("name", list(REAL_REQUESTS))
def test_real_requests_are_read_directly_with_the_same_answer(name: str) -> None:
    body = REAL_REQUESTS[name]
    assert direct(body) is not None
    assert_same_answer(body)


# Each is well-formed or not; the template must decline it (libxml2 reads it differently, or it is
# not update_engine's shape), and parse_request must answer as the XML parser does.
DECLINED = {
    "repeated attribute": UPDATE_ENGINE_REQUEST.replace(b'track="stable"', b'track="stable" track="beta"'),
    "repeated in ping": UPDATE_ENGINE_REQUEST.replace(b'<ping active="1">', b'<ping active="1" active="0">'),
    "namespace": UPDATE_ENGINE_REQUEST.replace(b"<request protocol", b'<request xmlns="urn:x" protocol'),
    "entity": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b'oem="a&amp;b"'),
    "character reference": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b'oem="&#97;mi"'),
    "tab in a value": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b'oem="a\tmi"'),
    "form feed between attributes": UPDATE_ENGINE_REQUEST.replace(b" track=", b"\x0ctrack="),
    "single quotes": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b"oem='ami'"),
    "blank around =": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', b'oem = "ami"'),
    "UTF-8 value": UPDATE_ENGINE_REQUEST.replace(b'oem="ami"', 'oem="ämi"'.encode()),
    "comment": UPDATE_ENGINE_REQUEST.replace(b"    <app", b"<!-- c -->    <app"),
    "DOCTYPE": UPDATE_ENGINE_REQUEST.replace(b"<request", b"<!DOCTYPE request>\n<request", 1),
    "second event": UPDATE_ENGINE_REQUEST.replace(
        b"    </app>", b'<event eventtype="3" eventresult="2"/></app>'
    ),
    "text in app": UPDATE_ENGINE_REQUEST.replace(b"    </app>", b"x</app>"),
    "blank before declaration": b" " + UPDATE_ENGINE_REQUEST,
    "declaration in single quotes": UPDATE_ENGINE_REQUEST.replace(b'version="1.0"', b"version='1.0'", 1),
    "unclosed": UPDATE_ENGINE_REQUEST.replace(b"</request>", b""),
}


@pytest.mark.parametrize("name", list(DECLINED))
def test_anything_else_answers_as_the_xml_parser_does(name: str) -> None:
    body = DECLINED[name]
    assert direct(body) is None
    assert not body.isascii() or read_in_any_order(body.decode("ascii")) is None
    assert_same_answer(body)


# In update_engine's shape but out of the ordinary: the direct read leaves each to the generic rules,
# which refuse it with their reason or accept it.
UNUSUAL = {
    "protocol 2.0": (b'protocol="3.0"', b'protocol="2.0"', "unsupported protocol version '2.0' (want 3.0)"),
    "empty appid": (b'appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"', b'appid=" "', "app 1: missing appid"),
    "machineid over its column": (
        b'machineid="',
        b'machineid="' + b"f" * 65,
        "app {e96281a6-d1af-4bde-9a0a-97b76e56dc57}: machineid is over 64 characters (97)",
    ),
    "machineid padded past the column": (b'machineid="', b'machineid="' + b" " * 40, None),
    "track over its column": (b'track="stable"', b'track="' + b"t" * 256 + b'"', "is over 255 characters"),
    "board over its column": (b'board="amd64-usr"', b'board="' + b"b" * 65 + b'"', "is over 64 characters"),
    "previousversion over its column": (
        b'previousversion=""', b'previousversion="' + b"9" * 65 + b'"', "is over 64 characters"
    ),
    "event type of 10 digits": (b'eventtype="3"', b'eventtype="0000000003"', None),
    "event type out of range": (b'eventtype="3"', b'eventtype="4294967296"', "eventtype"),
    "event type not a number": (b'eventtype="3"', b'eventtype="x"', "eventtype"),
    "negative errorcode": (b'previousversion=""', b'errorcode="-2147483648" previousversion=""', None),
    "errorcode of 10 digits": (b'previousversion=""', b'errorcode="4294967295" previousversion=""', None),
    "errorcode out of range": (b'previousversion=""', b'errorcode="4294967296" previousversion=""', "errorcode"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_the_unusual_in_update_engine_order_gets_the_generic_rules(name: str) -> None:
    old, new, refusal = UNUSUAL[name]
    assert old in UPDATE_ENGINE_REQUEST
    body = UPDATE_ENGINE_REQUEST.replace(old, new, 1)
    assert direct(body) is None
    assert read_in_any_order(body.decode("ascii")) is not None
    answer = outcome(body, "direct")
    if refusal is None:
        assert isinstance(answer, OmahaRequest)
    else:
        assert answer[0] == "refused" and refusal in answer[1], answer
    assert_same_answer(body)


def test_an_event_outside_the_accepted_pairs_is_refused_unless_any_is_accepted() -> None:
    body = UPDATE_ENGINE_REQUEST.replace(b'eventresult="2"', b'eventresult="9"', 1)
    assert direct(body, accept_any_event=True) is not None
    assert direct(body, accept_any_event=False) is None
    with pytest.raises(OmahaParseError, match="event 3/9 is not an accepted"):
        parse_request(body)
    assert parse_request(body, accept_any_event=True).apps[0].events == [OmahaEvent(3, 9, None, "")]


# Fragments that move a document in and out of the template's shape.
TOKENS = [
    b"<", b">", b"/>", b"&", b"&amp;", b'"', b"'", b"=", b" ", b"\t", b"\r\n", b"\x0c", b"\x00", b"\xc3\xa4",
    b'x="1"', b'active="1"', b'xmlns="u"', b'xml-a="1"', b"<ping/>", b"<updatecheck/>", b"</event>",
    b'<event eventtype="3" eventresult="2"/>', b"<os/>", b"</app>", b"<app>", b"<!-- c -->", b"<?pi?>",
    b"<!DOCTYPE r>", b"]]>",
]  # fmt: skip


@FUZZ
@given(edit_lists(len(UPDATE_ENGINE_REQUEST), TOKENS, chunk_size=4, max_edits=4))
def test_edited_requests_get_the_same_answer_on_every_path(ops: list[tuple[str, int, bytes]]) -> None:
    assert_same_answer(mutate(UPDATE_ENGINE_REQUEST, ops))


blanks = st.sampled_from(["", " ", "  ", "\n", "\r\n", "\t", "\x0c", "\n    "])
names = st.sampled_from(
    ["protocol", "appid", "version", "machineid", "eventtype", "eventresult", "a", "xmlns", "Xml_a", "_b.c-d"]
)
values = st.text(st.characters(min_codepoint=0, max_codepoint=0x7F) | st.sampled_from("äé€"), max_size=6) | (
    st.sampled_from(["3.0", "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", "2", "3", "4000.0.0"])
)


REQUIRED = {"request": ' protocol="3.0"', "app": ' appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"'}


@st.composite
def tags(draw: st.DrawFn, tag: str, empty: bool) -> str:
    attributes = (REQUIRED.get(tag, "") if draw(st.integers(0, 3)) else "") + "".join(
        draw(blanks.filter(bool)) + draw(names) + draw(st.sampled_from(['="', "='"])) + value + '"'
        for value in draw(st.lists(values, max_size=4))
    )
    close = draw(st.sampled_from(["/>", f"></{tag}>", f"></{tag} >"])) if empty else ">"
    return f"<{tag}{attributes}{draw(blanks)}{close}{draw(blanks)}"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    app = draw(tags("app", empty=False))
    for child in ("ping", "updatecheck", "event"):
        if draw(st.booleans()):
            app += draw(tags(child, empty=True))
    text = (
        draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>\n', "", "\n"]))
        + draw(tags("request", empty=False))
        + (draw(tags("os", empty=True)) if draw(st.booleans()) else "")
        + app
        + draw(st.sampled_from(["</app>", "</app >", "</ app>"]))
        + draw(blanks)
        + "</request>"
        + draw(blanks)
    )
    return text.encode()


@FUZZ
@given(documents())
def test_generated_documents_get_the_same_answer_on_every_path(body: bytes) -> None:
    assert_same_answer(body)
