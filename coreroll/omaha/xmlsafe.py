"""Hardened XML parsing for bodies anyone on the network can send.

``parse_untrusted_xml(body, limit) -> lxml root element`` raises ``OmahaParseError`` with a short reason:

- the size is checked before any parsing (over ``limit`` bytes -> refused);
- the body must be UTF-8 and start with ``<`` (after an optional BOM and blanks);
- libxml2 decodes it as UTF-8 whatever its XML declaration says: an ``encoding="UTF-7"`` declaration
  would otherwise turn bytes the scan below never matches (``+ADw-!DOCTYPE``) into markup;
- any ``<!DOCTYPE`` or ``<!ENTITY`` is refused outright, before parsing (and again after, from the parsed
  document's docinfo, should anything still hide one from the byte scan);
- lxml runs with ``resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
  huge_tree=False``, so nothing is fetched, no entity is expanded and libxml2's depth/size limits stay on.

Parsers are per thread: lxml parser objects must not be shared between threads.
"""

from __future__ import annotations

import threading

from lxml import etree

from coreroll.omaha.messages import OmahaParseError

_local = threading.local()
_MAX_REASON = 160


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            encoding="utf-8",  # overrides the document's declaration: the byte scan sees what libxml2 parses
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            attribute_defaults=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
            remove_blank_text=True,  # the blanks between elements are never read: no nodes for them
        )
        _local.parser = parser
    return parser


def short(text: str, limit: int = _MAX_REASON) -> str:
    """One line, printable, at most ``limit`` characters: safe to put in an HTTP 400 body or a log."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def parse_untrusted_xml(body: bytes, limit: int, what: str = "body") -> etree._Element:
    """Parse ``body`` (at most ``limit`` bytes) into its root element, or raise ``OmahaParseError``."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise OmahaParseError(f"{what} must be bytes, not {type(body).__name__}")
    data = bytes(body)
    if len(data) > limit:
        raise OmahaParseError(f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise OmahaParseError(f"{what} is not UTF-8 (byte {err.start})") from None
    start = text.lstrip("\ufeff \t\r\n")
    if not start:
        raise OmahaParseError(f"{what} is empty")
    if not start.startswith("<"):
        raise OmahaParseError(f"{what} is not XML (does not start with '<')")
    # Refuse DTDs before libxml2 sees them: no internal subset, no entity declarations, no laughs.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise OmahaParseError(f"{what} has a DOCTYPE or entity declaration; DTDs are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as err:
        # err.msg already says where: "..., line 3, column 9".
        raise OmahaParseError(short(f"malformed XML: {err.msg}")) from None
    except (etree.LxmlError, ValueError) as err:
        raise OmahaParseError(short(f"malformed XML: {err}")) from None
    if root is None:
        raise OmahaParseError(f"{what} has no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise OmahaParseError(f"{what} has a DOCTYPE; DTDs are not allowed")
    return root
