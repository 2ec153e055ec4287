"""Omaha v3 wire format: hardened request parsing and response building (server side), and re-exports of
the client side (``coreroll.omaha.client``: ``build_request``, ``parse_response``).

Server side:

- ``MAX_BODY = 65536``: larger bodies are refused before parsing.
- ``parse_request(body: bytes, *, accept_any_event=False) -> OmahaRequest`` raises ``OmahaParseError``
  whose ``str()`` is a short reason (answer HTTP 400 with it). Refused: over 64 KiB, not UTF-8, malformed
  XML, any DOCTYPE/ENTITY (so no XXE, no billion laughs), a root other than ``<request>``,
  ``protocol`` other than "3.0", no ``<app>``, more than ``MAX_APPS`` apps or ``MAX_EVENTS`` events per
  app, an app without ``appid``, an attribute the server stores that is longer than its database
  column ("<name> is over <n> characters": ``MAX_MACHINE_ID``, ``MAX_VERSION`` for version and
  previousversion, ``MAX_TRACK``, ``MAX_BOOT_ID``, ``MAX_OEM``, ``MAX_OEM_VERSION``,
  ``MAX_ALEPH_VERSION``, ``MAX_BOARD``; ``coreroll.omaha.widths``), an event type/result/errorcode that is not
  ASCII digits (``coreroll.wirenum``) or is out of range (type/result: 32-bit), and an event (type,
  result) pair outside ``codes.ACCEPTED_EVENTS`` unless ``accept_any_event=True`` (the server passes it:
  an unknown pair such as 3/9 must not cost the update check of the same request, issue #454). An
  empty or missing ``machineid`` is accepted (as Nebraska does; ``machineid=""``), the server decides
  what to register it as. An unknown app id is NOT a parse error: the server answers it with
  ``unknown_app_response(app)``.
- ``build_response(apps: list[AppResponse], server="coreroll", *, elapsed_seconds=None) -> bytes``:
  ``<daystart elapsed_seconds>`` defaults to the seconds since UTC midnight.
- ``app_response(app, updatecheck=None, *, status="ok", poll_interval=None) -> AppResponse``: echoes the
  request's ping and event count and keeps ``updatecheck`` only if the request asked for one.
- ``unknown_app_response(app) -> AppResponse``: ``status="error-unknownApplication"`` with an
  ``error-internal`` updatecheck (go-omaha/Nebraska).

Data classes (``coreroll.omaha.messages``): ``OmahaEvent``, ``OmahaApp``, ``OmahaRequest``,
``UpdateOffer``, ``AppResponse``, ``ResponseInfo``, ``OmahaParseError``.
"""

from __future__ import annotations

import functools
import time
from typing import Final

from coreroll.omaha.client import MAX_RESPONSE_BODY, build_request, parse_response
from coreroll.omaha.codes import (
    ACCEPTED_EVENTS,
    APP_STATUS_UNKNOWN_APPLICATION,
    UPDATECHECK_INTERNAL_ERROR,
    UPDATECHECK_OK,
)
from coreroll.omaha.messages import (
    AppResponse,
    ExtraPackage,
    OmahaApp,
    OmahaEvent,
    OmahaParseError,
    OmahaRequest,
    ResponseInfo,
    UpdateOffer,
)
from coreroll.omaha.request_template import (
    NO_CHILDREN,
    Element,
    read_in_any_order,
    read_in_update_engine_order,
)
from coreroll.omaha.widths import APP_WIDTHS, MAX_MACHINE_ID, MAX_VERSION
from coreroll.omaha.xmlsafe import parse_untrusted_xml, short
from coreroll.wirenum import NumberError, parse_int

__all__ = [
    "MAX_APPS",
    "MAX_BODY",
    "MAX_EVENTS",
    "MAX_RESPONSE_BODY",
    "AppResponse",
    "ExtraPackage",
    "OmahaApp",
    "OmahaEvent",
    "OmahaParseError",
    "OmahaRequest",
    "ResponseInfo",
    "UpdateOffer",
    "app_response",
    "build_request",
    "build_response",
    "escape_attr",
    "parse_request",
    "parse_response",
    "unknown_app_response",
]

MAX_BODY: Final = 65536
MAX_APPS: Final = 16  # update_engine sends one
MAX_EVENTS: Final = 16  # per app; update_engine sends at most one
# machineid and version are checked on their own (machineid stripped, version after the events)
_STORED_WIDTHS = tuple(
    (name, width) for name, width in APP_WIDTHS.items() if name not in ("machineid", "version")
)
_INT64 = 2**63 - 1
_NARROWEST = min(MAX_MACHINE_ID, MAX_VERSION, *(width for _, width in _STORED_WIDTHS))


def _app_where(appid: str) -> str:
    """The location prefix of an app's errors; built only when one is raised (hot path)."""
    return short(f"app {appid}", 60)


def _event_where(appid: str, number: int) -> str:
    return f"{_app_where(appid)} event {number}"


def _int_attr(
    attrs: dict[str, str], name: str, appid: str, number: int, low: int = -(2**31), high: int = 2**31 - 1
) -> int | None:
    """An integer attribute: ASCII digits, within [low, high] (default: the database's 32-bit INTEGER)."""
    raw = attrs.get(name)
    if raw is None:
        return None
    if len(raw) < 10 and raw.isascii() and raw.isdigit():  # the common case: what parse_int accepts
        value = int(raw)
        if low <= value <= high:
            return value
    try:
        return parse_int(raw, name, low, high, signed=True)
    except NumberError as exc:
        raise OmahaParseError(short(f"{_event_where(appid, number)}: {exc}")) from None


def _too_long(where: str, name: str, value: str, width: int) -> OmahaParseError:
    return OmahaParseError(f"{where}: {name} is over {width} characters ({len(value)})")


def _parse_event(attrs: dict[str, str], appid: str, number: int, accept_any: bool) -> OmahaEvent:
    etype = _int_attr(attrs, "eventtype", appid, number)
    result = _int_attr(attrs, "eventresult", appid, number)
    if etype is None or result is None:
        raise OmahaParseError(f"{_event_where(appid, number)}: eventtype and eventresult are required")
    if not accept_any and (etype, result) not in ACCEPTED_EVENTS:
        raise OmahaParseError(
            f"{_event_where(appid, number)}: event {etype}/{result} is not an accepted (type, result) pair"
        )
    code = _int_attr(attrs, "errorcode", appid, number, -_INT64, _INT64)  # range checked below, by name
    if code is not None:
        if not -(2**31) <= code < 2**32:
            raise OmahaParseError(
                f"{_event_where(appid, number)}: errorcode {code} is out of the 32-bit range"
            )
        code &= 0xFFFFFFFF  # update_engine prints with %d: DevModeFlag arrives negative
    previous = attrs.get("previousversion")
    if previous is not None and len(previous) > MAX_VERSION:
        raise _too_long(_event_where(appid, number), "previousversion", previous, MAX_VERSION)
    return OmahaEvent(etype, result, code, previous)


def _check_widths(attrs: dict[str, str], appid: str, machineid: str) -> None:
    """Refuse the first stored attribute longer than its column (machineid, then the others; the
    version is checked after the events)."""
    if len(machineid) > MAX_MACHINE_ID:
        raise _too_long(_app_where(appid), "machineid", machineid, MAX_MACHINE_ID)
    for name, width in _STORED_WIDTHS:
        value = attrs.get(name)
        if value is not None and len(value) > width:
            raise _too_long(_app_where(appid), name, value, width)


def _parse_app(attrs: dict[str, str], children: list[Element], index: int, accept_any: bool) -> OmahaApp:
    get = attrs.get
    appid = get("appid", "").strip()
    if not appid:
        raise OmahaParseError(f"app {index}: missing appid")
    machineid = get("machineid", "").strip()
    if max(map(len, attrs.values())) > _NARROWEST:  # only then can one be over its width
        _check_widths(attrs, appid, machineid)
    ping = updatecheck = False
    events: list[OmahaEvent] = []
    for tag, child_attrs, _ in children:
        if tag == "ping":
            ping = True
        elif tag == "updatecheck":
            updatecheck = True
        elif tag == "event":
            if len(events) >= MAX_EVENTS:
                raise OmahaParseError(f"{_app_where(appid)}: more than {MAX_EVENTS} events")
            events.append(_parse_event(child_attrs, appid, len(events) + 1, accept_any))
    version = get("version") or ""
    if len(version) > MAX_VERSION:
        raise _too_long(_app_where(appid), "version", version, MAX_VERSION)
    # Positional, in field order: a dataclass call by keyword costs 2.5x (the hot path).
    return OmahaApp(
        appid,  # appid
        version,  # version
        get("track", ""),  # track
        get("bootid", ""),  # bootid
        machineid,  # machineid
        get("oem", ""),  # oem
        get("oemversion", ""),  # oemversion
        get("alephversion", ""),  # alephversion
        get("board", ""),  # board
        get("machinealias", ""),  # machinealias
        ping,  # ping
        updatecheck,  # updatecheck
        events,  # events
    )


_READ_IN_APP = frozenset({"ping", "updatecheck", "event"})


def _tree_elements(body: bytes) -> tuple[Element, list[Element]]:
    """What ``parse_request`` reads, from libxml2's tree (the hardened parse): the root, its
    children, and an <app>'s <ping>, <updatecheck> and <event>s (attributes of the events only)."""
    root = parse_untrusted_xml(body, MAX_BODY, "request body")
    children: list[Element] = []
    for child in root:
        if child.tag == "app":
            read: list[Element] = [
                (tag, dict(kid.items()) if tag == "event" else {}, NO_CHILDREN)
                for kid in child
                if isinstance(tag := kid.tag, str) and tag in _READ_IN_APP
            ]
            children.append(("app", dict(child.items()), read))
        elif child.tag == "os":
            children.append(("os", dict(child.items()), NO_CHILDREN))
    # str(): a namespaced root's tag is "{uri}name", refused by its caller as not <request>
    return (str(root.tag), dict(root.items()), NO_CHILDREN), children


def parse_request(body: bytes, *, accept_any_event: bool = False) -> OmahaRequest:
    """Parse an Omaha v3 request (see the module docstring for what is refused)."""
    # update_engine's own shape needs no XML parser (coreroll.omaha.request_template); anything else
    # gets libxml2, hardened.
    template = None
    if type(body) is bytes and len(body) <= MAX_BODY and body.isascii():
        text = body.decode("ascii")
        request = read_in_update_engine_order(text, accept_any_event)
        if request is not None:
            return request
        template = read_in_any_order(text)
    root, children = template if template is not None else _tree_elements(body)
    root_tag, attrs, _ = root
    if root_tag != "request":
        raise OmahaParseError(short(f"root element is <{root_tag}>, expected <request>"))
    protocol = attrs.get("protocol")
    if protocol is None:
        raise OmahaParseError("request has no protocol attribute (want 3.0)")
    if protocol != "3.0":
        raise OmahaParseError(short(f"unsupported protocol version {protocol!r} (want 3.0)"))
    os_attrs: dict[str, str] | None = None
    apps: list[OmahaApp] = []
    for tag, child_attrs, app_children in children:
        if tag == "app":
            if len(apps) >= MAX_APPS:
                raise OmahaParseError(f"request has more than {MAX_APPS} apps")
            apps.append(_parse_app(child_attrs, app_children, len(apps) + 1, accept_any_event))
        elif tag == "os" and os_attrs is None:
            os_attrs = child_attrs
    if not apps:
        raise OmahaParseError("request has no <app>")
    os_get = (os_attrs or {}).get
    return OmahaRequest(  # positional, in field order (see OmahaApp above)
        protocol,  # protocol
        attrs.get("updaterversion") or attrs.get("version", ""),  # updater_version
        attrs.get("installsource", ""),  # installsource
        attrs.get("ismachine", "") == "1",  # ismachine
        os_get("platform", ""),  # os_platform
        os_get("version", ""),  # os_version
        os_get("sp", ""),  # os_sp
        apps,  # apps
        attrs.get("coreroll_agent") == "1",  # coreroll_agent
    )


_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)


def escape_attr(value: str) -> str:
    """Escape a value for a double-quoted XML attribute (newlines kept as character references)."""
    return value.translate(_ESCAPES)


def app_response(
    app: OmahaApp,
    updatecheck: str | UpdateOffer | None = None,
    *,
    status: str = "ok",
    poll_interval: int | None = None,
) -> AppResponse:
    """The AppResponse for ``app``: ping and events acknowledged, ``updatecheck`` only if it asked."""
    return AppResponse(
        appid=app.appid,
        status=status,
        updatecheck=updatecheck if app.updatecheck else None,
        ping=app.ping,
        event_count=len(app.events),
        poll_interval=poll_interval,
    )


def unknown_app_response(app: OmahaApp) -> AppResponse:
    """go-omaha/Nebraska's answer for an app id the server does not serve."""
    return AppResponse(
        appid=app.appid,
        status=APP_STATUS_UNKNOWN_APPLICATION,
        updatecheck=UPDATECHECK_INTERNAL_ERROR if app.updatecheck else None,
    )


def _extra_xml(extra: ExtraPackage) -> str:
    """Nebraska's (go-omaha's) attribute order: name, hash (base64 SHA-1), hash_sha256 (hex SHA-256: ue-rs
    rejects the whole response when it is not), size, required."""
    return (
        f'<package name="{escape_attr(extra.name)}" hash="{escape_attr(extra.sha1_b64)}"'
        f' hash_sha256="{extra.sha256_hex}" size="{int(extra.size)}" required="false"/>'
    )


def _offer_xml(offer: UpdateOffer, poll: str) -> str:
    sha1 = f' hash="{escape_attr(offer.sha1_b64)}"' if offer.sha1_b64 else ""
    backoff = ' DisablePayloadBackoff="true"' if offer.disable_payload_backoff else ""
    return (
        f'<updatecheck status="{UPDATECHECK_OK}"{poll}>'
        f'<urls><url codebase="{escape_attr(offer.codebase_url)}"/></urls>'
        f'<manifest version="{escape_attr(offer.version)}">'
        f'<packages><package name="{escape_attr(offer.package_name)}"{sha1} size="{int(offer.size)}"'
        ' required="true"/>'
        f"{''.join(_extra_xml(extra) for extra in offer.extras)}</packages>"
        f'<actions><action event="postinstall" sha256="{escape_attr(offer.sha256_b64)}"{backoff}/></actions>'
        "</manifest></updatecheck>"
    )


_APP_XML_CACHED = 256  # answers without an offer kept serialised (app ids come from requests: bounded)
_app_xml_cache: dict[tuple[str, str, str | None, bool, int, int | None], str] = {}


def _app_xml(app: AppResponse) -> str:
    parts = [f'<app appid="{escape_attr(app.appid)}" status="{escape_attr(app.status)}">']
    if app.ping:
        parts.append('<ping status="ok"/>')
    check = app.updatecheck
    if check is not None:
        poll = f' PollInterval="{int(app.poll_interval)}"' if app.poll_interval else ""
        if isinstance(check, UpdateOffer):
            parts.append(_offer_xml(check, poll))
        else:
            parts.append(f'<updatecheck status="{escape_attr(check)}"{poll}/>')
    parts.append('<event status="ok"/>' * app.event_count)
    parts.append("</app>")
    return "".join(parts)


def _app_xml_cached(app: AppResponse) -> str:
    """``_app_xml``; the same few noupdate/error answers go to every check, so they are built once."""
    check = app.updatecheck
    if isinstance(check, UpdateOffer):
        return _app_xml(app)
    key = (app.appid, app.status, check, app.ping, app.event_count, app.poll_interval)
    xml = _app_xml_cache.get(key)
    if xml is None:
        xml = _app_xml(app)
        if len(_app_xml_cache) < _APP_XML_CACHED:
            _app_xml_cache[key] = xml
    return xml


def build_response(
    apps: list[AppResponse], server: str = "coreroll", *, elapsed_seconds: int | None = None
) -> bytes:
    """Serialise a response update_engine accepts (one line after the XML declaration)."""
    if elapsed_seconds is None:
        elapsed_seconds = int(time.time()) % 86400
    return (
        _head(server, int(elapsed_seconds)) + "".join(map(_app_xml_cached, apps)) + "</response>\n"
    ).encode("utf-8")


@functools.lru_cache(maxsize=4)  # the server answers with one head per second
def _head(server: str, elapsed_seconds: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<response protocol="3.0" server="{escape_attr(server)}">'
        f'<daystart elapsed_seconds="{elapsed_seconds}"/>'
    )
