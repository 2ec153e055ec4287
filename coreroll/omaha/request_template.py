"""update_engine's request template read without an XML parser: the Omaha server's hot path.

``read_template(body) -> (root, children) | None``: the request as ``parse_request`` reads it
(``Element``s: the root, its child elements, and the child elements of the ``<app>``), or None for
anything but the one shape update_engine (omaha_request_action.cc's request template) and coreroll's
agent send; ``parse_request`` then runs the hardened XML parser (``coreroll.omaha.xmlsafe``).

Why: every update check of a fleet bigger than the parse memo is a new body. Measured in the running
server (CPU per check beside the bench's fixed answer), a libxml2 parse of update_engine's ~0.8 KiB
request costs ~4x what it costs in a loop on its own (its code and allocations are cold after the HTTP
stack ran), expat the same; this one match costs ~2x, about a third less than libxml2 in all.
update_engine's own attribute order is read from the match's groups; any other order by one split.

Only documents that are certainly well-formed XML, and that libxml2 reads the same, are accepted:
printable ASCII only (so UTF-8; no DOCTYPE, comment or processing instruction can appear), the XML
declaration exactly as update_engine writes it or none, then ``<request>`` holding an optional
``<os>`` and one ``<app>`` holding at most one each of ``<ping>``, ``<updatecheck>`` and ``<event>``
in that order (each ``<x .../>`` or ``<x ...></x>``), blanks between elements only. Attributes:
names ``[A-Za-z_][A-Za-z0-9_.-]*`` not starting with "xml" (a namespace declaration changes what
libxml2 reports), ``name="value"`` with no blanks around ``=``, values without ``"``, ``&``, ``<``
or control characters (libxml2 neither expands nor normalises anything in them), no name twice in a
tag. Anything else is left to the XML parser, which says what is wrong with it.
tests/omaha/test_request_template.py holds ``parse_request`` on both paths to the same answers.
"""

from __future__ import annotations

import re
from itertools import repeat

# (tag, attributes, children): an element as parse_request reads it. Children are kept for the
# root's <app>s only; attributes are not kept where nothing reads them (an <app>'s <ping> and
# <updatecheck>: an empty dict).
Element = tuple[str, dict[str, str], list["Element"]]
NO_CHILDREN: list[Element] = []  # shared, never appended to

_BLANK = r"[ \t\r\n]"  # XML's S: \f and \v are not blanks there
_NAME = r"(?![Xx][Mm][Ll])[A-Za-z_][A-Za-z0-9_.\-]*"
_VALUE = r"[\x20\x21\x23-\x25\x27-\x3b\x3d-\x7e]*"  # printable ASCII but " & <
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
# what every real node sends, read without splitting.
_REQUEST = ("protocol", "version", "updaterversion", "installsource", "ismachine", "coreroll_agent")
_OS = ("version", "platform", "sp")
_APP = (
    "appid", "version", "track", "bootid", "oem", "oemversion", "alephversion", "machineid", "machinealias",
    "lang", "board", "hardware_class", "delta_okay", "multi_manifest_ok",
)  # fmt: skip
_EVENT = ("eventtype", "eventresult", "errorcode", "previousversion")
_OPTIONAL = frozenset({"coreroll_agent", "multi_manifest_ok", "errorcode", "previousversion"})


def _values(names: tuple[str, ...]) -> str:
    one = rf'{_BLANK}+{{}}="({_VALUE})"'
    return "".join(f"(?:{one.format(n)})?" if n in _OPTIONAL else one.format(n) for n in names)


_UPDATE_ENGINE_ORDER = _document(
    _values(_REQUEST), _values(_OS), _values(_APP), _ATTRIBUTES, _ATTRIBUTES, _values(_EVENT)
)
_OS_AT = len(_REQUEST)
_APP_AT = _OS_AT + len(_OS)
_PING_AT = _APP_AT + len(_APP)
_EVENT_AT = _PING_AT + 2
_NAME_EDGES = " \t\r\n="  # what the match allows around a name: blanks before, '=' after


def _present(names: tuple[str, ...], values: tuple[str | None, ...]) -> dict[str, str]:
    """The attributes ``names`` of a match's value groups; a group is None only for an optional
    attribute that was absent, which is left out."""
    return {name: value for name, value in zip(names, values, strict=True) if value is not None}


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


def _in_update_engine_order(text: str) -> tuple[Element, list[Element]] | None:
    match = _UPDATE_ENGINE_ORDER.fullmatch(text)
    if match is None:
        return None
    values = match.groups()
    ping, updatecheck = values[_PING_AT], values[_PING_AT + 1]
    # <ping> and <updatecheck> attributes are not read, only checked for a repeated name.
    if ((ping and ping.count('"') > 2) or (updatecheck and updatecheck.count('"') > 2)) and _attributes_of(
        (ping or "", updatecheck or "")
    ) is None:
        return None
    return _elements(
        _present(_REQUEST, values[:_OS_AT]),
        None if values[_OS_AT] is None else _present(_OS, values[_OS_AT:_APP_AT]),  # version is required
        _present(_APP, values[_APP_AT:_PING_AT]),
        ping is not None,
        updatecheck is not None,
        None if values[_EVENT_AT] is None else _present(_EVENT, values[_EVENT_AT:]),
    )


def _in_any_order(text: str) -> tuple[Element, list[Element]] | None:
    match = _ANY_ORDER.fullmatch(text)
    if match is None:
        return None
    request, os, app, ping, updatecheck, event = match.groups()
    read = _attributes_of((request, os or "", app, event or "", ping or "", updatecheck or ""))
    if read is None:
        return None
    return _elements(
        read[0], None if os is None else read[1], read[2], ping is not None, updatecheck is not None,
        None if event is None else read[3],
    )  # fmt: skip


def _elements(
    request: dict[str, str],
    os: dict[str, str] | None,
    app: dict[str, str],
    ping: bool,
    updatecheck: bool,
    event: dict[str, str] | None,
) -> tuple[Element, list[Element]]:
    app_children: list[Element] = []
    if ping:
        app_children.append(("ping", {}, NO_CHILDREN))
    if updatecheck:
        app_children.append(("updatecheck", {}, NO_CHILDREN))
    if event is not None:
        app_children.append(("event", event, NO_CHILDREN))
    children: list[Element] = [] if os is None else [("os", os, NO_CHILDREN)]
    children.append(("app", app, app_children))
    return ("request", request, NO_CHILDREN), children


def read_template(body: bytes) -> tuple[Element, list[Element]] | None:
    """The request's root and its children, or None: not the template (see the module docstring)."""
    if not body.isascii():
        return None
    text = body.decode("ascii")
    return _in_update_engine_order(text) or _in_any_order(text)
