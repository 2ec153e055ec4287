"""What can be checked of a payload served elsewhere (URL mode: any HTTP server, CDN or object store).

A node downloads ``codebase + name``: the Omaha codebase is the URL's directory and the package name
its last path segment, as Nebraska's package URL works. So the URL must split that way:
``check_url(url)`` wants ``http``/``https``, a host, no user:password (it would be shown to every
node), no ``?query`` or ``#fragment`` (update_engine would join them into the name), and a last
segment that is a plain file name; it returns ``(url, filename)``. ``check_size`` wants an integer
1..2^63-1. ``sha256_b64`` / ``sha1_b64`` take base64 (as update_engine compares it) or hex, of the
right length, and return base64. Each raises ``CatalogError(400)`` naming the field and the value.
``FileMetadata`` is the checked result: where, how big, which hashes.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from coreroll.omaha.xmlsafe import short
from coreroll.server.catalog import CatalogError
from coreroll.server.schema import MAX_URL

FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_SIZE = 2**63 - 1
_HEX = set(string.hexdigits)


@dataclass(frozen=True, slots=True)
class FileMetadata:
    url: str
    filename: str
    size: int
    sha256_b64: str
    sha1_b64: str

    @property
    def directory(self) -> str:
        return directory_of(self.url)


def directory_of(url: str) -> str:
    """The codebase of ``url``: everything up to and including its last ``/``."""
    return url.rpartition("/")[0] + "/"


def check_url(url: Any, field: str = "url") -> tuple[str, str]:
    if not isinstance(url, str) or not url:
        raise CatalogError(400, f"{field}: expected an http:// or https:// URL, got {url!r}")
    shown = short(url, 120)
    if len(url) > MAX_URL:
        raise CatalogError(400, f"{field} {shown!r}: over {MAX_URL} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise CatalogError(400, f"{field} {shown!r}: blanks or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError as exc:
        raise CatalogError(400, f"{field} {shown!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CatalogError(400, f"{field} {shown!r}: the scheme must be https or http, not {parts.scheme!r}")
    if not parts.hostname:
        raise CatalogError(400, f"{field} {shown!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise CatalogError(400, f"{field} {shown!r}: user:password in a URL would be shown to every node")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise CatalogError(
            400,
            f"{field} {shown!r}: no ?query or #fragment: a node joins the URL's directory and its last "
            "path segment, as update_engine does",
        )
    name = unquote(parts.path.rpartition("/")[2])
    if not FILENAME.match(name):
        raise CatalogError(
            400,
            f"{field} {shown!r}: its last path segment {name!r} is not a plain file name (the package name)",
        )
    return url, name


def check_size(size: Any, field: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_SIZE:
        raise CatalogError(400, f"{field}: expected an integer from 1 to {MAX_SIZE} bytes, got {size!r}")
    return size


def _digest(value: Any, field: str, length: int) -> str:
    if not isinstance(value, str) or not value:
        raise CatalogError(400, f"{field}: expected base64 or hex of {length} bytes, got {value!r}")
    if len(value) == 2 * length and set(value) <= _HEX:
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length:
        raise CatalogError(
            400, f"{field} {short(value, 80)!r}: not the base64 or hex of a {length}-byte digest"
        )
    return base64.b64encode(raw).decode()


def sha256_b64(value: Any, field: str = "sha256") -> str:
    return _digest(value, field, 32)


def sha1_b64(value: Any, field: str = "sha1") -> str:
    return _digest(value, field, 20)


def check_metadata(url: Any, size: Any, sha256: Any, sha1: Any, where: str = "") -> FileMetadata:
    """All four checked; ``where`` prefixes each field name (e.g. ``"extras[0]."``)."""
    checked_url, name = check_url(url, f"{where}url")
    return FileMetadata(
        checked_url,
        name,
        check_size(size, f"{where}size"),
        sha256_b64(sha256, f"{where}sha256"),
        sha1_b64(sha1, f"{where}sha1"),
    )
