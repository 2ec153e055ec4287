"""A response leaves the server in one write (coreroll.server.one_write): on a real server, every
answer reaches a plain-socket client as one TCP data segment (the kernel's count, TCP_INFO), and a
``Connection: close`` answer arrives whole before the close; ``StepWrites``' rules on a recording
transport (pure logic: when held bytes go out, what close, abort and the buffer size see)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from coreroll.server.one_write import MAX_HELD, StepWrites
from coreroll.server.runner import RunningServer
from tests.server.helpers import REFERENCE_REQUEST

_TCPI_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in (u32) in Linux's struct tcp_info (4.6+)


def data_segments_received(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_DATA_SEGS_IN + 4)
    if len(info) < _TCPI_DATA_SEGS_IN + 4:
        pytest.skip("this kernel does not count received data segments (Linux 4.6+)")
    return int(struct.unpack_from("<I", info, _TCPI_DATA_SEGS_IN)[0])


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response on a keep-alive connection: (head, body), the body by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed mid-head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed mid-body: {body!r}"
        body += chunk
    assert len(body) == length, "more bytes than the answer's Content-Length"
    return head, body


def request(method: str, path: str, body: bytes = b"", close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: coreroll\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def test_each_answer_arrives_as_one_segment(sqlite_server: RunningServer) -> None:
    host, port = sqlite_server.url.removeprefix("http://").split(":")
    answers = [
        (request("POST", "/v1/update/", REFERENCE_REQUEST), b"200", b"<response"),
        (request("POST", "/v1/update/", b"<request"), b"400", b"bad omaha request"),
        (request("GET", "/healthz"), b"200", b'"status":"ok"'),
        (request("GET", "/api/v1/instances/no-such-machine"), b"404", b"error"),
        (request("GET", "/api/v1/channels"), b"200", b"stable"),
    ]
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        for sent, status, content in answers:
            before = data_segments_received(sock)
            sock.sendall(sent)
            head, body = read_response(sock)
            assert head.split(b" ", 2)[1] == status and content in body, (head, body[:200])
            # Before: the head and the body were two writes, so two segments (TCP_NODELAY).
            assert data_segments_received(sock) - before == 1, f"{sent.split(b' HTTP')[0]!r}: {head!r}"


def test_a_closing_answer_arrives_whole_before_the_close(sqlite_server: RunningServer) -> None:
    host, port = sqlite_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request("POST", "/v1/update/", REFERENCE_REQUEST, close=True))
        head, body = read_response(sock)
        assert b"connection: close" in head.lower() and body.rstrip().endswith(b"</response>")
        assert sock.recv(65536) == b""  # then the server closed, nothing after the answer


class Recording:
    """What a transport was asked to do, in order (pure logic: no socket)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False


async def _step_ended() -> None:
    """Returns after every callback already scheduled on the loop has run."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(done.set_result, None)
    await done


def _writes(seen: Recording) -> StepWrites:
    return StepWrites(seen, asyncio.get_running_loop())  # type: ignore[arg-type]  # duck-typed


async def test_writes_of_one_step_go_out_together_at_its_end() -> None:
    seen = Recording()
    writes = _writes(seen)
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    writes.write(bytearray(b"body"))
    writes.write(b"")
    assert seen.calls == [] and writes.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await _step_ended()
    assert seen.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
    assert writes.get_write_buffer_size() == 0
    writes.write(b"next")  # a later step: a write of its own
    await _step_ended()
    assert seen.calls[1:] == [("write", b"next")]


async def test_a_reused_buffer_does_not_change_what_was_written() -> None:
    seen = Recording()
    writes = _writes(seen)
    buffer = bytearray(b"first")
    writes.write(buffer)
    buffer[:] = b"XXXXX"
    await _step_ended()
    assert seen.calls == [("write", b"first")]


async def test_close_writes_what_is_held_first_and_abort_drops_it() -> None:
    seen = Recording()
    writes = _writes(seen)
    writes.write(b"answer")
    writes.close()
    await _step_ended()
    assert seen.calls == [("write", b"answer"), ("close", None)]  # once, before the close

    seen = Recording()
    writes = _writes(seen)
    writes.write(b"never sent")
    writes.abort()
    await _step_ended()
    assert seen.calls == [("abort", None)]


async def test_nothing_over_the_cap_is_held() -> None:
    seen = Recording()
    writes = _writes(seen)
    writes.write(b"h" * 100)
    writes.write(b"b" * MAX_HELD)  # a large body goes out at once, with what came before it
    assert seen.calls == [("write", b"h" * 100 + b"b" * MAX_HELD)]
    seen.buffered = 7
    assert writes.get_write_buffer_size() == 7  # the transport's own buffer, nothing held
    await _step_ended()
    assert len(seen.calls) == 1
    writes.write(b"c" * MAX_HELD)  # nothing held: a large chunk goes out as it is, at once
    assert seen.calls[1:] == [("write", b"c" * MAX_HELD)]
    await _step_ended()
    assert len(seen.calls) == 2


async def test_what_is_held_when_the_connection_went_away_is_dropped() -> None:
    seen = Recording()
    writes = _writes(seen)
    writes.write(b"answer to a client that reset the connection")
    seen.is_closing = lambda: True  # type: ignore[method-assign]  # closed from below meanwhile
    await _step_ended()
    assert seen.calls == []  # nothing written to a closed transport (uvloop would raise there)
