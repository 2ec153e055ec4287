"""A TCP proxy that can take a server "down" and bring it back: network faults for the engine's
tests and the fleet's fault injection ("server unreachable for a while").

`cut()` closes the listening socket and aborts every open connection, so clients see exactly what
they would see from a dead server: connection refused for new connections, a reset in the middle
of a transfer for open ones. `restore()` listens again on the same port. The server behind the
proxy keeps running and keeps its state.

Public API: `FaultProxy(target_host, target_port, *, down_rate=None)` (down_rate: bytes per
real second towards the client, to model a slow link) with `async start() -> str` (the proxy's
`http://127.0.0.1:PORT` URL), `async cut()`, `async restore()`, `async stop()`, `url`, `port`,
and the counters `bytes_down` (server -> client) and `connections`.
Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class FaultProxy:
    """Forward 127.0.0.1:port to target_host:target_port until cut."""

    def __init__(self, target_host: str, target_port: int, *, down_rate: float | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.down_rate = down_rate  # bytes per real second server -> client (a slow link); None = no limit
        self.port = 0
        self.bytes_down = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        if not self.port:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = int(sock.getsockname()[1])
        await self.restore()
        return self.url

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    async def stop(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer, down=False)),
            asyncio.ensure_future(self._pipe(up_reader, writer, down=True)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, down: bool) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(16384 if down and self.down_rate else 65536)
                if not data:
                    break
                if down:
                    self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
                if down and self.down_rate:
                    await asyncio.sleep(len(data) / self.down_rate)
