"""A response goes to the client in one write, not one for its head and one for its body.

uvicorn (0.55) writes a response's status line and headers when the app sends
``http.response.start``, and its body when the app sends ``http.response.body``: two ``send()``
system calls, and with ``TCP_NODELAY`` two TCP segments, each of which may wake the client (or a
reverse proxy) once. Joined, the server's CPU per answer fell from 67-78 to ~54 us on two shared
cores (the fixed answer of bench/omaha.py), and parsed update checks went from ~8,000 to ~12,000/s.

``StepWrites(transport, loop)`` holds what is written during one step of the event loop and hands
it to ``transport`` as one write at the end of the step (``loop.call_soon``): the head and the body
an app sends without waiting in between go out together; nothing waits longer than the step that
wrote it. What flow control needs is kept: ``close()`` writes what is held first, ``abort()``
drops it as the transport would, ``get_write_buffer_size()`` counts it, and ``MAX_HELD`` bytes are
never held (more goes out at once, so a large body still pauses the writer as before).

``one_write_protocol(base) -> type``: ``base`` (uvicorn's HTTP protocol) whose connections write
through a ``StepWrites``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

MAX_HELD = 64 * 1024  # bytes held for the end of the step; more are written at once


class StepWrites(asyncio.Transport):
    """``transport``, with the writes of one event-loop step joined (see the module docstring)."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None  # None: nothing held, no flush scheduled
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        held = self._held
        if held is None and len(data) >= MAX_HELD:  # a large chunk alone (a download): as it is
            self._transport.write(data)
            return
        chunk = data if type(data) is bytes else bytes(data)  # a caller may reuse its buffer
        if held is None:
            self._held, self._held_bytes = [chunk], len(chunk)
            self._loop.call_soon(self.flush)
        else:
            held.append(chunk)
            self._held_bytes += len(chunk)
        if self._held_bytes >= MAX_HELD:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is held now (the scheduled call then finds nothing). A transport closed
        meanwhile from below (the peer reset it) drops it, as it would have dropped the writes: uvloop
        raises on a write to a closed handle, and here no caller would see it."""
        held, self._held, self._held_bytes = self._held, None, 0
        if held is not None and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._held_bytes = None, 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


def one_write_protocol(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HttpToolsProtocol or H11Protocol) writing through ``StepWrites``."""

    class OneWrite(base):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's TCPTransport has a stream transport's methods but is no asyncio.Transport
            stream = cast(asyncio.Transport, transport)
            super().connection_made(StepWrites(stream, asyncio.get_running_loop()))

    OneWrite.__name__ = OneWrite.__qualname__ = f"OneWrite{base.__name__}"
    return OneWrite
