"""Bounds on the server's HTTP connections, below the ASGI app (issue 16, defects 2 and 6).

uvicorn (0.55) bounds none of these itself: a connection that never completes a request head is
kept for ever (its keep-alive timer starts only after a first response), so does one that stops
sending its body, a client that stops reading blocks its response's ``send()`` for ever (a feed
client holds its slot), and ``limit_concurrency`` counts such connections and answers 503 to
everyone else. Here:

- a request head must arrive within ``header_timeout`` seconds of its first byte (of the
  connection, for the first request), and be at most ``MAX_HEAD`` bytes: else 408 / 431 and close;
- a request body may pause at most ``body_timeout`` seconds, and must arrive at
  ``MIN_BODY_RATE`` bytes/s or better after the first ``body_timeout`` seconds (Apache's
  mod_reqtimeout rule; time the server itself is not reading does not count): else 408 and close;
- a client that takes no response bytes for ``write_timeout`` seconds while some wait for it is
  disconnected: the kernel's send queue for it stays non-empty and the count of bytes it
  acknowledged (``TCP_INFO``) does not move. (Waiting for the transport to pause writing is not
  enough: the kernel's send buffer grows to megabytes first, hours of feed traffic for a fleet.)
  Where the socket cannot be asked, the transport staying paused counts instead;
- at most ``max_connections`` connections are open: one more closes the connection that has waited
  longest for a request head (an idle keep-alive first), so half-open clients cannot lock out an
  update check; when every connection is busy with a request the new one gets 503.

``guarded_protocol(base, guard) -> type``: a subclass of uvicorn's HTTP protocol (httptools or h11;
both keep ``cycle``, ``flow``, ``transport`` and ``connections``) that tracks this per connection.
``ConnectionGuard(limits, on_drop)``: ``sweep(connections)`` applies the time bounds; the server
calls it every ``SWEEP_TICKS`` ticks of uvicorn's 0.1 s main loop (``runner._Server.on_tick``).
``files_needed(max_connections)`` / ``fit_to_file_limit(max_connections)``: the open-file limit
the cap needs, raising the soft limit towards the hard one, and the cap that fits if it cannot.
"""

from __future__ import annotations

import asyncio
import fcntl
import resource
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MAX_HEAD = 64 * 1024  # bytes of a request head (llhttp, under httptools, has no limit of its own)
MIN_BODY_RATE = 1024  # bytes/s a request body must keep up after its first body_timeout seconds
SWEEP_TICKS = 5  # uvicorn ticks (0.1 s) between sweeps: deadlines hold to within 0.5 s
FILES_PER_CONNECTION = 2  # its socket, and the payload file a download holds open
RESERVED_FILES = 128  # the database, its pool, logs, key and token files, with room to spare


@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds (seconds, and connections); defaults and flags: ``ServerSettings``."""

    max_connections: int
    header_timeout: float
    body_timeout: float
    write_timeout: float


def files_needed(max_connections: int) -> int:
    return FILES_PER_CONNECTION * max_connections + RESERVED_FILES


def fit_to_file_limit(max_connections: int) -> tuple[int, str | None]:
    """Raise the soft open-file limit as far as ``max_connections`` needs (up to the hard limit);
    returns the connection cap that fits, and a warning when that is below ``max_connections``."""
    needed = files_needed(max_connections)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_connections, None
    fits = max(1, (soft - RESERVED_FILES) // FILES_PER_CONNECTION)
    return fits, (
        f"the open-file limit ({soft}) is too low for --max-connections {max_connections} "
        f"(needs {needed}); serving at most {fits} connections. Raise it (systemd: LimitNOFILE={needed})"
    )


_TCPI_BYTES_ACKED = 120  # offset of tcpi_bytes_acked (u64) in Linux's struct tcp_info (4.1+)


def tcp_progress(sock: Any) -> tuple[int, int] | None:
    """(bytes queued in the kernel for the peer, bytes the peer acknowledged so far), or None
    when the socket cannot tell (not TCP on Linux, or closed)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_BYTES_ACKED + 8)
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, AttributeError, ValueError):
        return None
    if len(info) < _TCPI_BYTES_ACKED + 8:
        return None
    return struct.unpack("i", queued)[0], struct.unpack_from("<Q", info, _TCPI_BYTES_ACKED)[0]


def _reply(status: int, reason: str, message: str) -> bytes:
    body = f"{message}\n".encode()
    extra = b"retry-after: 10\r\n" if status == 503 else b""
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


class ConnectionGuard:
    """The limits, and what every guarded connection reports to: ``on_drop(reason)`` counts drops
    (reasons: head_timeout, head_too_large, body_timeout, write_timeout, evicted, refused)."""

    def __init__(
        self,
        limits: ConnectionLimits,
        on_drop: Callable[[str], None] = lambda _reason: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.on_drop = on_drop
        self.clock = clock

    def sweep(self, connections: Iterable[Any]) -> None:
        now = self.clock()
        for connection in list(connections):
            check = getattr(connection, "guard_check", None)
            if check is not None:
                check(now)


def guarded_protocol(base: type[asyncio.Protocol], guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HttpToolsProtocol or H11Protocol) with ``guard``'s bounds."""

    class Guarded(base):
        # What uvicorn's protocols set in their __init__/connection_made (annotations only: the
        # checker sees asyncio.Protocol as the base). transport is None until connection_made.
        connections: set[Any]
        cycle: Any  # h11's or httptools' RequestResponseCycle, or None
        transport: asyncio.Transport
        flow: Any  # uvicorn's FlowControl
        # The wait for a request head: since when, for which finished cycle (None: the first
        # request), and its bytes so far. None: not waiting (busy, or an idle keep-alive).
        _head_since: float | None = None
        _head_after: Any = None
        _head_bytes = 0
        _body_since = 0.0
        _body_last = 0.0
        _body_bytes = 0
        _checked_at = 0.0
        _write_paused_since: float | None = None
        _acked = -1  # bytes the client acknowledged at the last sweep
        _stalled_since: float | None = None  # since when it took none while some waited

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            now = guard.clock()
            self._head_since, self._head_after, self._checked_at = now, None, now
            if len(self.connections) > guard.limits.max_connections:
                self._make_room()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            now = guard.clock()
            waiting = _waits_for_head(cycle)
            if waiting:
                if self._head_since is None or self._head_after is not cycle:
                    self._head_since, self._head_after, self._head_bytes = now, cycle, 0
                self._head_bytes += len(data)
            else:
                self._body_bytes += len(data)
                self._body_last = now
            super().data_received(data)
            if self.cycle is not cycle:  # a request head was completed
                self._head_since = None
                self._body_since = self._body_last = now
                self._body_bytes = 0
            elif waiting and self._head_bytes > MAX_HEAD and not self.transport.is_closing():
                self._drop("head_too_large", 431, "Request Header Fields Too Large",
                           f"request head is over {MAX_HEAD} bytes")  # fmt: skip

        def pause_writing(self) -> None:
            self._write_paused_since = guard.clock()
            super().pause_writing()

        def resume_writing(self) -> None:
            self._write_paused_since = None
            super().resume_writing()

        def waiting_since(self) -> float | None:
            """When this connection began waiting for a request head (-inf: an idle keep-alive),
            or None when it is busy with a request."""
            if self.transport is None or self.transport.is_closing() or not _waits_for_head(self.cycle):
                return None
            if self._head_since is None or self._head_after is not self.cycle:
                return float("-inf")
            return self._head_since

        def guard_check(self, now: float) -> None:
            limits = guard.limits
            if self.transport is None or self.transport.is_closing():
                return
            since, self._checked_at = self._checked_at, now
            stalled = self._not_reading_since(now)
            if stalled is not None and now - stalled >= limits.write_timeout:
                self._drop("write_timeout", 0, "", "")
                return
            cycle = self.cycle
            if _waits_for_head(cycle):
                head = self._head_since
                if head is not None and self._head_after is cycle and now - head >= limits.header_timeout:
                    self._drop("head_timeout", 408, "Request Timeout",
                               f"request head not received within {limits.header_timeout:g} s")  # fmt: skip
                return
            if not cycle.more_body:
                return
            if self.flow.read_paused:  # the server is not reading: not the client's delay
                self._body_since += now - since
                self._body_last = now
                return
            allowed = limits.body_timeout + self._body_bytes / MIN_BODY_RATE
            if now - self._body_last >= limits.body_timeout or now - self._body_since >= allowed:
                self._drop("body_timeout", 408, "Request Timeout",
                           f"request body stalled (at most {limits.body_timeout:g} s without a byte, "
                           f"and {MIN_BODY_RATE} bytes/s)")  # fmt: skip

        def _not_reading_since(self, now: float) -> float | None:
            """Since when bytes have waited for the client without it taking any (None: it is
            taking them, or nothing waits). Only a response in progress is looked at (two system
            calls): after a response, the keep-alive timeout closes the connection anyway."""
            cycle = self.cycle
            sending = cycle is not None and cycle.response_started and not cycle.response_complete
            if not sending and self.transport.get_write_buffer_size() == 0:
                self._stalled_since = None
                return None
            progress = tcp_progress(self.transport.get_extra_info("socket"))
            if progress is None:
                return self._write_paused_since
            queued, acked = progress
            if queued == 0 or acked != self._acked:
                self._acked, self._stalled_since = acked, None
            elif self._stalled_since is None:
                self._stalled_since = now
            return self._stalled_since

        def _make_room(self) -> None:
            """Over the cap: close the connection waiting longest for a request head, else refuse
            this one (the count is redone first: closed transports may not be gone yet)."""
            open_now = [
                c for c in self.connections if c.transport is not None and not c.transport.is_closing()
            ]
            if len(open_now) <= guard.limits.max_connections:
                return
            waiting = [
                (c.waiting_since(), id(c), c) for c in open_now if c is not self and isinstance(c, Guarded)
            ]
            oldest = min(((s, i, c) for s, i, c in waiting if s is not None), default=None)
            cap = guard.limits.max_connections
            message = f"the server is at its connection limit ({cap}, --max-connections); try again"
            if oldest is not None and oldest[0] == float("-inf"):
                oldest[2]._drop("evicted", 0, "", "")  # an idle keep-alive: closed as its timer would
            elif oldest is not None:
                oldest[2]._drop("evicted", 503, "Service Unavailable", message)
            else:
                self._drop("refused", 503, "Service Unavailable", message)

        def _drop(self, reason: str, status: int, phrase: str, message: str) -> None:
            """Answer ``status`` (0: nothing) and close, when nothing is left to send on this
            connection; else abort it (a client that reads nothing would keep a close waiting)."""
            guard.on_drop(reason)
            cycle = self.cycle
            # A reply answers a request head that is not complete, or a request not answered yet;
            # never after a response (the client would take it for the next request's).
            answers = _waits_for_head(cycle) or not cycle.response_started
            if (answers or cycle.response_complete) and self.transport.get_write_buffer_size() == 0:
                if status and answers:
                    self.transport.write(_reply(status, phrase, message))
                self.transport.close()
            else:
                self.transport.abort()
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app sees http.disconnect at once
                cycle.message_event.set()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def _waits_for_head(cycle: Any) -> bool:
    """No request in progress: the next bytes on the connection begin a request head."""
    return cycle is None or (cycle.response_complete and not cycle.more_body)
