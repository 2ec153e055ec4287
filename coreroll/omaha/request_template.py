"""update_engine's request template read without an XML parser: the Omaha server's hot path.

``read_template(body) -> (root, children) | None``: the request as ``parse_request`` reads it
(``Element``s: the root, its child elements, and the child elements of the ``<app>``), or None for
anything but the one shape update_engine (omaha_request_action.cc's request template) and coreroll's
agent send; ``parse_request`` then runs the hardened XML parser (``coreroll.omaha.xmlsafe``).

Why: every update check of a fleet bigger than the parse memo is a new body, and in the running server
libxml2 (or expat) costs about four times what it costs in a loop on its own, as its code and
allocations are cold after the HTTP stack ran; one regular-expression match plus string splits cost
about twice (bench/omaha.py, the memo-miss run).

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


def _empty_element(tag: str) -> str:
    """An optional ``<tag .../>`` or ``<tag ...></tag>``, its attributes one group."""
    return rf"(?:<{tag}{_ATTRIBUTES}{_BLANK}*(?:/>|></{tag}{_BLANK}*>){_BLANK}*)?"


_DOCUMENT = re.compile(
    rf'(?:<\?xml version="1\.0" encoding="UTF-8"\?>)?{_BLANK}*'
    rf"<request{_ATTRIBUTES}{_BLANK}*>{_BLANK}*"
    + _empty_element("os")
    + rf"<app{_ATTRIBUTES}{_BLANK}*>{_BLANK}*"
    + _empty_element("ping")
    + _empty_element("updatecheck")
    + _empty_element("event")
    + rf"</app{_BLANK}*>{_BLANK}*</request{_BLANK}*>{_BLANK}*"
)
_NAME_EDGES = " \t\r\n="  # what the match allows around a name: blanks before, '=' after


class _Repeated(Exception):
    """A tag names one attribute twice: not well-formed, the XML parser reports it."""


def _attributes(text: str) -> dict[str, str]:
    """``text`` is one tag's attributes as the match took them: ( blanks name="value" )*."""
    parts = text.split('"')  # values hold no '"': names and values alternate, then ""
    names = parts[0:-1:2]
    attributes = dict(zip(map(str.strip, names, repeat(_NAME_EDGES)), parts[1::2], strict=True))
    if len(attributes) != len(names):
        raise _Repeated
    return attributes


def _unread(text: str | None, tag: str, into: list[Element]) -> None:
    """Append ``tag`` when present; its attributes are only checked for a repeated name."""
    if text is not None:
        if text.count('"') > 2:  # two attributes or more: one may be repeated
            _attributes(text)
        into.append((tag, {}, NO_CHILDREN))


def read_template(body: bytes) -> tuple[Element, list[Element]] | None:
    """The request's root and its children, or None: not the template (see the module docstring)."""
    if not body.isascii():
        return None
    match = _DOCUMENT.fullmatch(body.decode("ascii"))
    if match is None:
        return None
    request, os, app, ping, updatecheck, event = match.groups()
    try:
        app_children: list[Element] = []
        _unread(ping, "ping", app_children)
        _unread(updatecheck, "updatecheck", app_children)
        if event is not None:
            app_children.append(("event", _attributes(event), NO_CHILDREN))
        children: list[Element] = [] if os is None else [("os", _attributes(os), NO_CHILDREN)]
        children.append(("app", _attributes(app), app_children))
        return ("request", _attributes(request), NO_CHILDREN), children
    except _Repeated:
        return None
