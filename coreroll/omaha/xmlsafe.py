"""Hardened XML parsing for bodies anyone on the network can send.

``parse_untrusted_xml(body, limit) -> lxml root element`` raises ``OmahaParseError`` with a short reason;
``feed_untrusted_xml(body, limit, Kind) -> target`` parses the same way but builds no tree: libxml2
hands each element to this thread's ``Kind`` target (an ``ElementTarget``: ``start(tag, attrib)``,
``end(tag)``), which costs about half as much for a small document (the Omaha server's hot path).
Both:

- the size is checked before any parsing (over ``limit`` bytes -> refused);
- the body must be UTF-8 and start with ``<`` (after an optional BOM and blanks);
- libxml2 decodes it as UTF-8 whatever its XML declaration says: an ``encoding="UTF-7"`` declaration
  would otherwise turn bytes the scan below never matches (``+ADw-!DOCTYPE``) into markup;
- any ``<!DOCTYPE`` or ``<!ENTITY`` is refused outright, before parsing (and again after, from the parsed
  document's docinfo, should anything still hide one from the byte scan);
- lxml runs with ``resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
  huge_tree=False``, so nothing is fetched, no entity is expanded and libxml2's depth/size limits stay on
  (with a target, a DOCTYPE the byte scan missed is refused from the parser's ``doctype`` callback,
  which stops the parser, so the predefined entities are the only ones it can resolve).

Parsers are per thread: lxml parser objects must not be shared between threads.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, TypeVar, cast

from lxml import etree

from coreroll.omaha.messages import OmahaParseError

_local = threading.local()
_MAX_REASON = 160
# Both parsers: UTF-8 only, nothing fetched, no DTD read or applied, libxml2's limits on, comments and
# PIs dropped.
_hardened_parser = functools.partial(
    etree.XMLParser,
    encoding="utf-8",  # overrides the document's declaration: the byte scan sees what libxml2 parses
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    attribute_defaults=False,
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
)


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _hardened_parser(
            resolve_entities=False,
            remove_blank_text=True,  # the blanks between elements are never read: no nodes for them
        )
        _local.parser = parser
    return parser


def short(text: str, limit: int = _MAX_REASON) -> str:
    """One line, printable, at most ``limit`` characters: safe to put in an HTTP 400 body or a log."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _checked_bytes(body: bytes, limit: int, what: str) -> bytes:
    """``body`` as bytes after the checks made before any parsing (module docstring)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise OmahaParseError(f"{what} must be bytes, not {type(body).__name__}")
    data = bytes(body)
    if len(data) > limit:
        raise OmahaParseError(f"{what} is {len(data)} bytes, over the {limit}-byte limit")
    if data[:1] != b"<" or not data.isascii():  # else plain ASCII (so UTF-8) starting with '<'
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
    return data


def parse_untrusted_xml(body: bytes, limit: int, what: str = "body") -> etree._Element:
    """Parse ``body`` (at most ``limit`` bytes) into its root element, or raise ``OmahaParseError``."""
    data = _checked_bytes(body, limit, what)
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


class ElementTarget:
    """What ``feed_untrusted_xml`` hands the elements to; comments, PIs and text are not passed on.
    One instance per thread and subclass, reused: ``reset()`` starts each document afresh."""

    what = "body"  # names the document in the DOCTYPE refusal

    def reset(self) -> None:
        raise NotImplementedError

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise NotImplementedError

    def end(self, tag: str) -> None:
        raise NotImplementedError

    def doctype(self, _name: str | None, _pubid: str | None, _system: str | None) -> None:
        raise OmahaParseError(f"{self.what} has a DOCTYPE; DTDs are not allowed")

    def close(self) -> None:
        return None


Target = TypeVar("Target", bound=ElementTarget)


def _target_parser(kind: type[Target]) -> tuple[Target, Any]:
    """This thread's parser feeding a ``kind`` target. Reused: a new libxml2 parser context costs
    more than parsing a small document."""
    parsers: dict[type[ElementTarget], tuple[ElementTarget, Any]] = _local.__dict__.setdefault("targets", {})
    found = parsers.get(kind)
    if found is None:
        target = kind()
        parser = _hardened_parser(
            target=target,  # pyright: ignore[reportArgumentType]  # lxml calls only the callbacks a target has; the stub wants all
            # Without a tree, libxml2 hands attribute values over unsubstituted ("&amp;" as "&#38;").
            # Only the five predefined entities can be resolved: no entity can be declared, since a
            # DOCTYPE is refused by the byte scan or, at its first byte, by the doctype callback,
            # which stops the parser.
            resolve_entities=True,
        )
        found = parsers[kind] = (target, parser)
    return cast("tuple[Target, Any]", found)  # each kind maps to its own target


def feed_untrusted_xml(body: bytes, limit: int, kind: type[Target]) -> Target:
    """Parse ``body`` (at most ``limit`` bytes) handing its elements to this thread's ``kind``
    target, reset first, and return that target; or raise ``OmahaParseError`` (the target's own
    ``OmahaParseError`` passes through as it is). Read the target before the next call."""
    data = _checked_bytes(body, limit, kind.what)
    target, parser = _target_parser(kind)
    target.reset()
    try:
        etree.fromstring(data, parser)
    except OmahaParseError:
        raise
    except etree.XMLSyntaxError as err:
        raise OmahaParseError(short(f"malformed XML: {err.msg}")) from None
    except (etree.LxmlError, ValueError) as err:
        raise OmahaParseError(short(f"malformed XML: {err}")) from None
    return target
