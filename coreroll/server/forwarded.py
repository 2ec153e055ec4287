"""The origin clients used, as opposed to the address the server listens on (a server behind a proxy).

Every absolute URL the server hands out (the Omaha codebase, package links in the JSON API, the
``Location`` of a redirect) starts with the request's origin. Behind a TLS-terminating proxy the
request the server sees is plain HTTP to its loopback address, so that origin is wrong, and
update_engine cannot follow an http -> https redirect either (it pins a URL's scheme for redirects).

- ``check_public_url(url) -> str``: ``--public-url`` normalised (no trailing ``/``), or ValueError.
- ``parse_networks(values) -> tuple[network, ...]``: ``--trusted-proxy`` values (addresses or CIDR
  networks), or ValueError naming the bad one; ``in_networks(address, values)`` (parsed once).
- ``PublicOrigin(app, public_url, trusted)``: ASGI middleware that rewrites each HTTP request's
  scheme and ``Host`` to ``public_url``'s, else, when the TCP peer is a trusted proxy, to its
  ``X-Forwarded-Proto`` (http/https) and ``X-Forwarded-Host`` (a valid host[:port]); anything else
  (an untrusted peer, an unknown scheme, a malformed host) is ignored. The client address is
  not touched here: ``app.client_ip`` reads X-Forwarded-For with the same trust.
- ``startup_note(listen, public_url, trusted) -> str | None``: what a server on loopback with no
  ``--public-url`` will tell nodes, said once at start.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scope = dict[str, Any]
# host[:port] as a proxy forwards it: a DNS name or IPv4 address, or a bracketed IPv6 address.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_SCHEMES = {b"http": "http", b"https": "https"}


def check_public_url(url: str) -> str:
    """``url`` without its trailing ``/``; ValueError unless it is http(s)://HOST[:PORT][/PATH]."""
    problem = "expected http(s)://HOST[:PORT][/PATH], the address nodes and clients use"
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError(f"--public-url {url!r}: {problem}, in ASCII (a name in its xn-- form)")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"--public-url {url!r}: {exc}; {problem}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--public-url {url!r}: {problem}")
    if "?" in url or "#" in url or parts.username is not None or port == 0:
        raise ValueError(f"--public-url {url!r}: no query, fragment, user or port 0; {problem}")
    return url.rstrip("/")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {value!r}: expected the proxy's IP address or network (10.0.0.0/8)"
            ) from None
    return tuple(networks)


@functools.lru_cache(maxsize=64)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def in_networks(address: str, values: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(values))


def _first(value: bytes) -> bytes:
    """The first of a comma-separated header value: the origin the client-facing proxy saw."""
    return value.split(b",", 1)[0].strip()


def _valid_host(value: bytes) -> bytes | None:
    text = value.decode("latin-1")
    if not _HOST.match(text):
        return None
    _, colon, port = text.rpartition("]")[2].rpartition(":")
    return value if not colon or 0 < int(port) < 65536 else None


class PublicOrigin:
    def __init__(self, app: Any, public_url: str | None, trusted: tuple[str, ...]) -> None:
        self.app = app
        self.trusted = trusted
        self.fixed: tuple[str, bytes] | None = None
        self.prefix = ""
        if public_url is not None:
            parts = urlsplit(public_url)
            self.fixed = (parts.scheme, parts.netloc.encode("ascii"))
            self.prefix = parts.path.rstrip("/")

    def _origin(self, scope: Scope) -> tuple[str | None, bytes | None]:
        if self.fixed is not None:
            return self.fixed
        client = scope.get("client")
        if not client or not in_networks(client[0], self.trusted):
            return None, None
        scheme = host = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto" and scheme is None:
                scheme = _SCHEMES.get(_first(value).lower())
            elif name == b"x-forwarded-host" and host is None:
                host = _valid_host(_first(value))
        return scheme, host

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, host = self._origin(scope)
        if scheme is not None or host is not None:
            scope = dict(scope)
            if scheme is not None:
                scope["scheme"] = scheme
            if host is not None:
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", host)]
        if self.prefix and self.fixed is not None:
            send = self._prefixing(send, self.fixed)
        await self.app(scope, receive, send)

    def _prefixing(self, send: Any, origin: tuple[str, bytes]) -> Any:
        """A proxy that serves coreroll under a path strips it; a redirect's Location gets it back."""
        base = f"{origin[0]}://".encode() + origin[1]
        prefix = self.prefix.encode("ascii")

        def fix(name: bytes, value: bytes) -> tuple[bytes, bytes]:
            if name == b"location" and value.startswith(base + b"/"):
                return name, base + prefix + value[len(base) :]
            return name, value

        async def send_with_prefix(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [fix(k, v) for k, v in message.get("headers", ())]
            await send(message)

        return send_with_prefix


def startup_note(listen: str, public_url: str | None, trusted: tuple[str, ...]) -> str | None:
    if public_url is not None:
        return f"every URL handed out starts with {public_url} (--public-url)"
    host = listen.rpartition(":")[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    forwarded = (
        f"X-Forwarded-Proto/-Host from {', '.join(trusted)}"
        if trusted
        else "no X-Forwarded-* (no --trusted-proxy)"
    )
    return (
        f"no --public-url: nodes are told to download from the origin of their own request "
        f"(its Host header; {forwarded}). Through a proxy that passes neither, that is "
        f"http://{listen}/packages/..., the node's own loopback; behind a proxy, give "
        "--public-url https://NAME (what update.conf's SERVER= names)"
    )
