"""etcd's JSON gateway answers are hostile input: a real HTTP server plays a broken or malicious
etcd, and every bad answer is one clear error naming what was wrong (never a crash, never a
header injected into the next request)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdError
from coreroll.etcd.gateway import connect
from coreroll.etcd.http1 import MAX_BODY

STATUS = json.dumps({"header": {"revision": "5"}, "version": "3.5.17"}).encode()


class FakeEtcd(ThreadingHTTPServer):
    replies: dict[str, tuple[int, dict[str, str], bytes]]


class Handler(BaseHTTPRequestHandler):
    server: FakeEtcd

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, headers, body = self.server.replies.get(self.path, (200, {}, STATUS))
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEtcd]:
    server = FakeEtcd(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(server: FakeEtcd) -> FakeEtcd:
    server.replies = {}
    return server


def config(server: FakeEtcd, **extra: object) -> EtcdConfig:
    return EtcdConfig(endpoints=(f"http://127.0.0.1:{server.server_address[1]}",), timeout=2.0, **extra)  # type: ignore[arg-type]


def range_reply(doc: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((200, {}, b"<html>proxy error</html>"), "not JSON"),
        ((200, {}, b"[1, 2]"), "expected a JSON object"),
        (range_reply({"kvs": [{"key": "!!not base64", "value": ""}]}), "'key' is not base64"),
        (
            range_reply({"kvs": [{"key": "a2V5", "mod_revision": "1e999"}]}),
            "'mod_revision' is not an integer",
        ),
        (
            range_reply({"kvs": [{"key": "a2V5", "mod_revision": "99999999999999999999"}]}),
            "out of the int64 range",
        ),
        (range_reply({"kvs": "everything"}), "'kvs' is not a list"),
        (range_reply({"header": {"revision": ["x"]}}), "'revision' is not an integer"),
        ((200, {}, b"[" * 100_000 + b"]" * 100_000), "not JSON"),
    ],
)
async def test_bad_range_replies_are_clear_errors(
    fake: FakeEtcd, reply: tuple[int, dict[str, str], bytes], message: str
) -> None:
    fake.replies["/v3/kv/range"] = reply
    kv = await connect(config(fake))
    try:
        with pytest.raises(EtcdError, match=message):
            await kv.get_prefix("coreos.com/")
    finally:
        await kv.close()


async def test_a_reply_bigger_than_the_cap_is_refused(fake: FakeEtcd) -> None:
    fake.replies["/v3/kv/range"] = (200, {"Content-Length": str(MAX_BODY + 1)}, b"{}")
    kv = await connect(config(fake))
    try:
        with pytest.raises(EtcdError, match="out of bounds"):
            await kv.get("k")
    finally:
        await kv.close()


async def test_an_auth_token_that_would_inject_a_header_is_refused(fake: FakeEtcd) -> None:
    fake.replies["/v3/auth/authenticate"] = range_reply({"token": "abc\r\nX-Injected: 1"})
    with pytest.raises(EtcdConfigError, match="without a usable token"):
        await connect(config(fake, username="root", password="pw"))
