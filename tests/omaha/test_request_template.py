"""parse_request reads update_engine's own request shape without libxml2 (request_template): that path
must answer exactly what the XML parser path answers, for the shapes real nodes send and for anything
else, and real nodes' requests must take it."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coreroll.omaha import protocol
from coreroll.omaha.messages import OmahaEvent, OmahaParseError, OmahaRequest
from coreroll.omaha.protocol import build_request, parse_request
from coreroll.omaha.request_template import _in_any_order, _in_update_engine_order, read_template
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


def outcome(body: bytes, *, template: bool) -> Outcome:
    """What parse_request answers, with the template path on or forced off."""
    with mock.patch.object(protocol, "read_template", read_template if template else lambda _body: None):
        try:
            return parse_request(body, accept_any_event=True)
        except OmahaParseError as err:
            return ("refused", str(err))


def assert_same_answer(body: bytes) -> None:
    assert outcome(body, template=True) == outcome(body, template=False), body
    if body.isascii():  # update_engine's attribute order read by value groups: as any order reads it
        in_order = _in_update_engine_order(body.decode("ascii"))
        assert in_order is None or in_order == _in_any_order(body.decode("ascii")), body


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
def test_real_requests_take_the_template_path_with_the_same_answer(name: str) -> None:
    body = REAL_REQUESTS[name]
    assert _in_update_engine_order(body.decode("ascii")) is not None
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
    assert read_template(body) is None
    assert_same_answer(body)


def test_a_bad_request_in_the_template_shape_is_refused_with_the_same_reason() -> None:
    body = UPDATE_ENGINE_REQUEST.replace(b'protocol="3.0"', b'protocol="2.0"')
    assert read_template(body) is not None
    assert outcome(body, template=True) == ("refused", "unsupported protocol version '2.0' (want 3.0)")
    assert_same_answer(body)


# Fragments that move a document in and out of the template's shape.
TOKENS = [
    b"<", b">", b"/>", b"&", b"&amp;", b'"', b"'", b"=", b" ", b"\t", b"\r\n", b"\x0c", b"\x00", b"\xc3\xa4",
    b'x="1"', b'active="1"', b'xmlns="u"', b'xml-a="1"', b"<ping/>", b"<updatecheck/>", b"</event>",
    b'<event eventtype="3" eventresult="2"/>', b"<os/>", b"</app>", b"<app>", b"<!-- c -->", b"<?pi?>",
    b"<!DOCTYPE r>", b"]]>",
]  # fmt: skip


@FUZZ
@given(edit_lists(len(UPDATE_ENGINE_REQUEST), TOKENS, chunk_size=4, max_edits=4))
def test_edited_requests_get_the_same_answer_on_both_paths(ops: list[tuple[str, int, bytes]]) -> None:
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
def test_generated_documents_get_the_same_answer_on_both_paths(body: bytes) -> None:
    assert_same_answer(body)
