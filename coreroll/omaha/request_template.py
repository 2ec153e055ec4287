"""update_engine's request template read without an XML parser: the Omaha server's hot path.

- ``read_in_update_engine_order(text, accept_any_event) -> OmahaRequest | None``: a request in the
  attribute order update_engine writes (omaha_request_action.cc's template; coreroll's agent adds two
  optional ones), read in one match straight into the request objects, or None for anything else,
  anything out of the ordinary included: a value wider than its database column, an event number
  that is not 1-9 digits (an errorcode may be negative), a pair outside ``ACCEPTED_EVENTS`` unless
  ``accept_any_event``, a protocol other than 3.0, an empty appid. ``parse_request`` then reads it by
  the generic rules below, which accept it or say what is wrong.
- ``read_in_any_order(text) -> (root, children) | None``: the same shape with attributes in any
  order, as ``Element``s (the root, its child elements, the child elements of the ``<app>``) for
  ``parse_request``'s checks, or None; ``parse_request`` then runs the hardened XML parser
  (``coreroll.omaha.xmlsafe``).

``text`` is the body decoded as ASCII (a body with any other byte goes to the XML parser).

Why: every update check of a fleet bigger than the parse memo is a new body. Measured in the running
server (CPU per check beside the bench's fixed answer), a libxml2 parse of update_engine's ~0.8 KiB
request costs ~4x what it costs in a loop on its own (its code and allocations are cold after the HTTP
stack ran), expat the same; this one match costs ~2x. Building attribute dicts and elements from the
match and then checking them cost as much again as the match, hence the direct read of the common
order (about half the cost of the generic one).

Only documents that are certainly well-formed XML, and that libxml2 reads the same, are accepted:
printable ASCII only (no DOCTYPE, comment or processing instruction can appear), the XML declaration
exactly as update_engine writes it or none, then ``<request>`` holding an optional ``<os>`` and one
``<app>`` holding at most one each of ``<ping>``, ``<updatecheck>`` and ``<event>`` in that order
(each ``<x .../>`` or ``<x ...></x>``), blanks between elements only. Attributes: names
``[A-Za-z_][A-Za-z0-9_.-]*`` not starting with "xml" (a namespace declaration changes what libxml2
reports), ``name="value"`` with no blanks around ``=``, values without ``"``, ``&``, ``<`` or control
characters (libxml2 neither expands nor normalises anything in them), no name twice in a tag.
tests/omaha/test_request_template.py holds ``parse_request`` on all three paths to the same answers.
"""

from __future__ import annotations

import re
from itertools import repeat

from coreroll.omaha.codes import ACCEPTED_EVENTS
from coreroll.omaha.messages import OmahaApp, OmahaEvent, OmahaRequest
from coreroll.omaha.widths import APP_WIDTHS, MAX_VERSION

# (tag, attributes, children): an element as parse_request reads it. Children are kept for the
# root's <app>s only; attributes are not kept where nothing reads them (an <app>'s <ping> and
# <updatecheck>: an empty dict).
Element = tuple[str, dict[str, str], list["Element"]]
NO_CHILDREN: list[Element] = []  # shared, never appended to

_BLANK = r"[ \t\r\n]"  # XML's S: \f and \v are not blanks there
_NAME = r"(?![Xx][Mm][Ll])[A-Za-z_][A-Za-z0-9_.\-]*"
_VALUE_CHAR = r"[\x20\x21\x23-\x25\x27-\x3b\x3d-\x7e]"  # printable ASCII but " & <
_VALUE = _VALUE_CHAR + "*"
_ATTRIBUTES = rf'((?:{_BLANK}+{_NAME}="{_VALUE}")*)'


def _document(request: str, os: str, app: str, ping: str, updatecheck: str, event: str) -> re.Pattern[str]:
    """The template, given the pattern of each tag's attributes; <os> and the <app>'s children
    optional, each ``<tag .../>`` or ``<tag ...></tag>``."""

    def optional(tag: str, attributes: str) -> str:
        return rf"(?:<{tag}{attributes}{_BLANK}*(?:/>|></{tag}{_BLANK}*>){_BLANK}*)?"

    return re.compile(
        rf'(?:<\?xml version="1\.0" encoding="UTF-8"\?>)?{_BLANK}*'
        rf"<request{request}{_BLANK}*>{_BLANK}*"
        + optional("os", os)
        + rf"<app{app}{_BLANK}*>{_BLANK}*"
        + optional("ping", ping)
        + optional("updatecheck", updatecheck)
        + optional("event", event)
        + rf"</app{_BLANK}*>{_BLANK}*</request{_BLANK}*>{_BLANK}*"
    )


# Any attributes: each tag's one group, split by _attributes_of.
_ANY_ORDER = _document(*[_ATTRIBUTES] * 6)

# update_engine's own attributes in its own order, each value a group (optional ones may be absent):
# what every real node sends. Values the direct read would have to check are narrowed here instead
# (a wider one is read by the generic rules, which refuse it or accept it).
_REQUEST = ("protocol", "version", "updaterversion", "installsource", "ismachine", "coreroll_agent")
_OS = ("version", "platform", "sp")
_APP = (
    "appid", "version", "track", "bootid", "oem", "oemversion", "alephversion", "machineid", "machinealias",
    "lang", "board", "hardware_class", "delta_okay", "multi_manifest_ok",
)  # fmt: skip
_EVENT = ("eventtype", "eventresult", "errorcode", "previousversion")
_OPTIONAL = frozenset({"coreroll_agent", "multi_manifest_ok", "errorcode", "previousversion"})
_NUMBER = "[0-9]{1,9}"  # int() of it is within 32 bits


def _at_most(width: int) -> str:
    return f"{_VALUE_CHAR}{{0,{width}}}"


_REQUEST_VALUES = {"protocol": r"3\.0"}
_APP_VALUES = {name: _at_most(width) for name, width in APP_WIDTHS.items()}
_EVENT_VALUES = {
    "eventtype": _NUMBER, "eventresult": _NUMBER, "errorcode": f"-?{_NUMBER}",
    "previousversion": _at_most(MAX_VERSION),
}  # fmt: skip


def _values(names: tuple[str, ...], patterns: dict[str, str]) -> str:
    """One group per name, holding its value (pattern ``patterns[name]``, else any value)."""
    groups = (rf'{_BLANK}+{name}="({patterns.get(name, _VALUE)})"' for name in names)
    return "".join(f"(?:{g})?" if name in _OPTIONAL else g for name, g in zip(names, groups, strict=True))


_UPDATE_ENGINE_ORDER = _document(
    _values(_REQUEST, _REQUEST_VALUES),
    _values(_OS, {}),
    _values(_APP, _APP_VALUES),
    _ATTRIBUTES,
    _ATTRIBUTES,
    _values(_EVENT, _EVENT_VALUES),
)
_NAME_EDGES = " \t\r\n="  # what the match allows around a name: blanks before, '=' after


def _attributes_of(texts: tuple[str, ...]) -> list[dict[str, str]] | None:
    """Each tag's attributes from what the match took for them, ( blanks name="value" )*; None when
    a tag names one twice (not well-formed: the XML parser reports it). One split for all tags."""
    parts = "".join(texts).split('"')  # values hold no '"': names and values alternate, then ""
    names = list(map(str.strip, parts[0:-1:2], repeat(_NAME_EDGES)))
    values = parts[1::2]
    found: list[dict[str, str]] = []
    start = 0
    for text in texts:
        end = start + text.count('"') // 2
        attributes = dict(zip(names[start:end], values[start:end], strict=True))
        if len(attributes) != end - start:
            return None
        found.append(attributes)
        start = end
    return found


def read_in_update_engine_order(text: str, accept_any_event: bool) -> OmahaRequest | None:
    """The request, when ``text`` is update_engine's template in its attribute order and nothing in it
    is out of the ordinary (see the module docstring); else None."""
    match = _UPDATE_ENGINE_ORDER.fullmatch(text)
    if match is None:
        return None
    (
        protocol, version, updaterversion, installsource, ismachine, coreroll_agent,  # <request>
        os_version, os_platform, os_sp,  # <os>
        appid, app_version, track, bootid, oem, oemversion, alephversion, machineid, machinealias,
        _lang, board, _hardware_class, _delta_okay, _multi_manifest_ok,  # <app>
        ping, updatecheck,  # their attributes, not read
        eventtype, eventresult, errorcode, previousversion,  # <event>
    ) = match.groups()  # fmt: skip
    # <ping> and <updatecheck> attributes are only checked for a repeated name.
    if ((ping and ping.count('"') > 2) or (updatecheck and updatecheck.count('"') > 2)) and _attributes_of(
        (ping or "", updatecheck or "")
    ) is None:
        return None
    appid = appid.strip()
    if not appid:
        return None
    events: list[OmahaEvent] = []
    if eventtype is not None:
        pair = (int(eventtype), int(eventresult))
        if not accept_any_event and pair not in ACCEPTED_EVENTS:
            return None
        # update_engine prints the errorcode with %d: DevModeFlag arrives negative
        code = None if errorcode is None else int(errorcode) & 0xFFFFFFFF
        events.append(OmahaEvent(pair[0], pair[1], code, previousversion))
    # Positional, in field order: a dataclass call by keyword costs 2.5x (the hot path).
    app = OmahaApp(
        appid, app_version, track, bootid, machineid.strip(), oem, oemversion, alephversion, board,
        machinealias, ping is not None, updatecheck is not None, events,
    )  # fmt: skip
    return OmahaRequest(
        protocol, updaterversion or version, installsource, ismachine == "1", os_platform or "",
        os_version or "", os_sp or "", [app], coreroll_agent == "1",
    )  # fmt: skip


def read_in_any_order(text: str) -> tuple[Element, list[Element]] | None:
    """The request's root and its children, or None: not the template (see the module docstring)."""
    match = _ANY_ORDER.fullmatch(text)
    if match is None:
        return None
    request, os, app, ping, updatecheck, event = match.groups()
    read = _attributes_of((request, os or "", app, event or "", ping or "", updatecheck or ""))
    if read is None:
        return None
    app_children: list[Element] = []
    if ping is not None:
        app_children.append(("ping", {}, NO_CHILDREN))
    if updatecheck is not None:
        app_children.append(("updatecheck", {}, NO_CHILDREN))
    if event is not None:
        app_children.append(("event", read[3], NO_CHILDREN))
    children: list[Element] = [] if os is None else [("os", read[1], NO_CHILDREN)]
    children.append(("app", read[2], app_children))
    return ("request", read[0], NO_CHILDREN), children
