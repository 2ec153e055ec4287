"""A small HTTP/1.1 client on asyncio streams, for etcd's JSON APIs (v2 keys, the v3 gateway).

Why not httpx: importing it (with its CLI extras) costs more than `coreroll lock status` may take
in all; etcd's HTTP APIs need only requests with a body, keep-alive, chunked replies and TLS.

    http = Http1Client(config)                      # TLS files and basic auth from EtcdConfig
    reply = await http.request("GET", "http://127.0.0.1:2379/v2/keys/a", timeout=5.0)
    reply.status, reply.headers["x-etcd-index"], reply.body
    async for line in http.stream_lines("POST", url, body):   # a streamed (chunked) reply
        ...
    await http.close()

The client timeout bounds connecting and reading a reply (`long_poll=True`: no read bound). A connection
that cannot be opened raises `HttpConnectError` (refused, unresolvable, connect timeout), a broken
or malformed reply `HttpProtocolError`, a read past the timeout `TimeoutError`. Replies are capped
at `MAX_BODY` bytes (etcd is hostile input too). Idle connections are kept per endpoint and reused;
a request that finds its reused connection closed by the server before any reply byte is sent
again once on a new connection (nothing reached etcd).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdError

MAX_BODY = 64 * 1024 * 1024  # a full v2 listing of 10,000 nodes is ~10 MB
MAX_HEADER_LINE = 16 * 1024
MAX_IDLE_PER_ENDPOINT = 64


class HttpConnectError(EtcdError):
    """No connection could be opened to the endpoint."""


class HttpProtocolError(EtcdError):
    """The server broke the connection or answered something that is not HTTP/1.1."""


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # names lowercased
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def ssl_context(config: EtcdConfig) -> ssl.SSLContext | None:
    """The client TLS context for `config` (None: the system roots, made when first needed).
    A CA file alone is enough; a client certificate needs its key."""
    if not (config.cafile or config.certfile):
        return None
    for path, what in (
        (config.cafile, "CA file"),
        (config.certfile, "certificate file"),
        (config.keyfile, "key file"),
    ):
        if path and not Path(path).is_file():
            raise EtcdConfigError(f"cannot read etcd {what} {path}: no such file")
    try:
        context = ssl.create_default_context(cafile=config.cafile or None)
        if config.certfile:
            context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise EtcdConfigError(f"cannot load etcd TLS files: {exc}") from exc
    return context


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http1Client:
    def __init__(self, config: EtcdConfig, *, basic_auth: bool = True) -> None:
        self.timeout = config.timeout
        self._ssl = ssl_context(config)
        self._auth: str | None = None
        if basic_auth and config.username:
            pair = f"{config.username}:{config.password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode()
        self.headers: dict[str, str] = {}  # sent with every request (the v3 gateway's auth token)
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._open: set[asyncio.StreamWriter] = set()

    # --- connections -----------------------------------------------------------------------
    async def _connect(self, scheme: str, host: str, port: int) -> _Conn:
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context, limit=MAX_HEADER_LINE * 4), self.timeout
            )
        except TimeoutError as exc:
            raise HttpConnectError("connect timed out") from exc
        except ssl.SSLError as exc:
            raise HttpConnectError(f"TLS failed: {exc.reason or exc}") from exc
        except OSError as exc:
            raise HttpConnectError(str(exc.strerror or exc)) from exc
        self._open.add(writer)
        return reader, writer

    def _drop(self, conn: _Conn) -> None:
        self._open.discard(conn[1])
        conn[1].close()

    async def close(self) -> None:
        self._idle.clear()
        writers, self._open = list(self._open), set()
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    # --- requests ----------------------------------------------------------------------------
    def _head(self, method: str, url: str, query: Mapping[str, str] | None, body: bytes | None,
              content_type: str) -> tuple[tuple[str, str, int], bytes]:  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EtcdConfigError(f"etcd endpoint {url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.path or "/"
        if query:
            target += "?" + urlencode(query)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
        if self._auth:
            lines.append(f"Authorization: {self._auth}")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if body is not None:
            lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return (parts.scheme, parts.hostname, port), head + (body or b"")

    async def _send(
        self, where: tuple[str, str, int], data: bytes, read_seconds: float | None
    ) -> tuple[_Conn, int, dict[str, str]]:
        """Write the request on an idle or new connection; read the status line and headers."""
        while True:
            idle = self._idle.get(where)
            reused = bool(idle)
            conn = idle.pop() if idle else await self._connect(*where)
            try:
                conn[1].write(data)
                await conn[1].drain()
                status, headers = await asyncio.wait_for(_read_head(conn[0]), read_seconds)
                return conn, status, headers
            except (ConnectionError, asyncio.IncompleteReadError, HttpProtocolError) as exc:
                self._drop(conn)
                if reused and _nothing_read(exc):
                    continue  # the server had closed the idle connection: nothing reached it
                raise HttpProtocolError(
                    f"{where[0]}://{where[1]}:{where[2]}: connection lost ({exc or type(exc).__name__})"
                ) from exc
            except BaseException:
                self._drop(conn)
                raise

    async def request(
        self,
        method: str,
        url: str,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        long_poll: bool = False,
    ) -> HttpReply:
        """One request and its whole reply; `long_poll`: no bound on waiting for the reply."""
        read_timeout = None if long_poll else self.timeout
        where, data = self._head(method, url, query, body, content_type)
        conn, status, headers = await self._send(where, data, read_timeout)
        try:
            payload = await asyncio.wait_for(_read_body(conn[0], headers, method), read_timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self._drop(conn)
            raise HttpProtocolError(
                f"{url}: connection lost in the reply ({exc or type(exc).__name__})"
            ) from exc
        except BaseException:
            self._drop(conn)
            raise
        if headers.get("connection", "").lower() == "close" or not _framed(headers):
            self._drop(conn)
        else:
            pool = self._idle.setdefault(where, [])
            if len(pool) < MAX_IDLE_PER_ENDPOINT:
                pool.append(conn)
            else:
                self._drop(conn)
        return HttpReply(status, headers, payload)

    async def stream_lines(
        self, method: str, url: str, body: bytes | None = None
    ) -> AsyncGenerator[tuple[int, bytes], None]:
        """(status, line) for each newline-ended line of a streamed reply (no read timeout); the
        connection is closed when the caller stops."""
        where, data = self._head(method, url, None, body, "application/json")
        conn, status, headers = await self._send(where, data, self.timeout)
        try:
            buffer = b""
            async for chunk in _chunks(conn[0], headers):
                buffer += chunk
                if len(buffer) > MAX_BODY:
                    raise HttpProtocolError(f"{url}: a streamed line passed {MAX_BODY} bytes")
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield status, line
            if buffer.strip():
                yield status, buffer
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise HttpProtocolError(f"{url}: stream broken ({exc or type(exc).__name__})") from exc
        finally:
            self._drop(conn)


def _nothing_read(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionError) or "closed before a reply" in str(exc)


def _framed(headers: Mapping[str, str]) -> bool:
    return "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise HttpProtocolError("connection closed before a reply")
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpProtocolError(f"not an HTTP/1.1 status line: {line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(200):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n"):
            if status == 100:  # "100 Continue": the real reply follows
                return await _read_head(reader)
            return status, headers
        if not raw:
            raise asyncio.IncompleteReadError(raw, None)
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise HttpProtocolError(f"malformed header line {raw[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise HttpProtocolError("more than 200 header lines")


async def _chunks(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readline()
            if not size_line.endswith(b"\n"):
                raise asyncio.IncompleteReadError(size_line, None)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpProtocolError(f"bad chunk size {size_line[:40]!r}") from None
            if size < 0 or size > MAX_BODY:
                raise HttpProtocolError(f"chunk of {size} bytes is out of bounds")
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise HttpProtocolError(f"bad Content-Length {headers['content-length'][:40]!r}") from None
        if length < 0 or length > MAX_BODY:
            raise HttpProtocolError(f"a reply of {length} bytes is out of bounds")
        if length:
            yield await reader.readexactly(length)
    else:  # until the server closes
        while chunk := await reader.read(65536):
            yield chunk


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str], method: str) -> bytes:
    if method == "HEAD":
        return b""
    parts: list[bytes] = []
    size = 0
    async for chunk in _chunks(reader, headers):
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpProtocolError(f"reply passed {MAX_BODY} bytes")
        parts.append(chunk)
    return b"".join(parts)
