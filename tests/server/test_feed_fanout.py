"""Feed fan-out off the Omaha path (issue 10, defect 8), against the real server: a commit is read
from the change log once for every connected client, a stalled client holds up no Omaha check and
loses nothing, and clients past ``max_feed_clients`` get a 503 saying how to raise the limit."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import event

from coreroll.omaha.protocol import OmahaEvent, build_request
from coreroll.server import feed
from coreroll.server.runner import RunningServer
from tests.server.conftest import start
from tests.server.helpers import get, metric, omaha

_ID = re.compile(rb"^id: ([0-9]+)$", re.M)


class RawFeed:
    """A feed client on a plain socket (HTTP/1.0: no chunking), reading only when asked to, so a
    test can make it stall. ``rcvbuf`` shrinks its receive buffer (a stalled reader fills it fast);
    ``headers``: more request header lines (``Name: value\r\n`` each)."""

    def __init__(
        self, url: str, last_id: int | None = None, rcvbuf: int | None = None, headers: str = ""
    ) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(15)
        self.sock.connect((host, int(port)))
        resume = f"Last-Event-ID: {last_id}\r\n" if last_id is not None else ""
        self.sock.sendall(f"GET /api/v1/feed HTTP/1.0\r\nHost: {host}\r\n{resume}{headers}\r\n".encode())
        self.data = b""
        while b"\r\n\r\n" not in self.data:
            self._recv()
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        self.head = head.decode("latin-1")
        self.ids: list[int] = []

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the feed")
        self.data += chunk

    def read_until(self, last_id: int) -> list[int]:
        """Every event id received, once ``last_id`` is among them (socket timeout: 15 s of silence)."""
        while True:
            complete, sep, self.data = self.data.rpartition(b"\n\n")  # whole events only
            self.ids += [int(i) for i in _ID.findall(complete + sep)]
            if self.ids and self.ids[-1] >= last_id:
                return self.ids
            self._recv()

    def rest(self) -> str:
        """The body of a refused request (the server closes the connection after it)."""
        while True:
            try:
                self._recv()
            except ConnectionError:
                return self.data.decode()

    def close(self) -> None:
        self.sock.close()


def register(server: RunningServer, n: int, apps: int = 1, oem: str = "ami") -> None:
    """First checks of new machines ``fan<n>``... (``apps`` of them in one request, as the Omaha
    protocol allows): one instance change in the feed each."""
    bodies = [
        build_request(
            version="3999.0.0", track="stable", machineid=f"fan{n + i:05d}", oem=oem, oemversion="0.1",
            bootid="{b0071d00-0000-4000-8000-000000000000}", alephversion="3510.2.0", board="amd64-usr",
            installsource="scheduler", ping=True, updatecheck=True, events=[OmahaEvent(3, 2, None, "")],
        ).decode()
        for i in range(apps)
    ]  # fmt: skip
    first = bodies[0]
    app_xml = [b[b.index("<app ") : b.index("</app>") + len("</app>")] for b in bodies]
    body = first[: first.index("<app ")] + "".join(app_xml) + first[first.index("</app>") + len("</app>") :]
    root = omaha(server.url, body.encode())
    assert [a.find("updatecheck").get("status") for a in root.findall("app")] == ["noupdate"] * apps


def test_one_change_log_read_per_fan_out_whatever_the_number_of_clients(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    # Count the server's own queries on the change log (the server runs in this process).
    engine = server._server.config.app.state.core.storage.engine.sync_engine  # type: ignore[union-attr]
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM changes" in statement:
            reads.append(statement)

    head = get(server, "/api/v1/info")["feed_id"]
    clients = [RawFeed(server.url, last_id=head) for _ in range(40)]
    assert {c.status for c in clients} == {200}
    event.listen(engine, "before_cursor_execute", count)
    try:
        for n in range(30):
            register(server, n)
        last = get(server, "/api/v1/info")["feed_id"]
        expected = list(range(head + 1, last + 1))
        for client in clients:
            assert client.read_until(last) == expected
            client.close()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # Before the fix every client queried the change log on every commit: about 40 x 30 = 1,200
    # reads. Now one per fan-out (at most one per commit), plus each client's catch-up on connect.
    assert len(reads) <= 30 + 40 + 5, len(reads)
    fanouts = metric(server, 'coreroll_feed_reads_total{reason="fanout"}')
    assert 1 <= fanouts <= 30


def test_feed_clients_past_the_limit_get_503(tmp_path: Path, sqlite_url: str) -> None:
    server = start(tmp_path, sqlite_url, max_feed_clients=3)
    try:
        clients = [RawFeed(server.url) for _ in range(3)]
        assert [c.status for c in clients] == [200, 200, 200]
        refused = RawFeed(server.url)
        assert refused.status == 503 and "retry-after: 10" in refused.head.lower()
        error = refused.rest()
        assert "limit reached: 3 clients" in error and "--max-feed-clients" in error
        assert metric(server, "coreroll_feed_refused_total") == 1
        assert get(server, "/api/v1/info")["server"] == "coreroll"  # everything else still served
        clients.pop().close()
        # The slot is given back once the server has seen the disconnect.
        deadline = time.monotonic() + 10
        while (again := RawFeed(server.url)).status != 200:
            assert time.monotonic() < deadline, "the closed client's slot was never given back"
            again.close()
            time.sleep(0.05)
        clients.append(again)
        for client in clients:
            client.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_stalled_feed_client_holds_up_no_check_and_loses_nothing(
    sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = sqlite_server
    monkeypatch.setattr(feed, "BACKLOG", 4)  # the server runs in this process: overflow sooner
    head = get(server, "/api/v1/info")["feed_id"]
    stalled = RawFeed(server.url, last_id=head, rcvbuf=4096)  # never reads until the end
    live = RawFeed(server.url, last_id=head)
    catchups = 'coreroll_feed_reads_total{reason="catchup"}'
    initial = metric(server, catchups)
    n = 0
    # Big events (255-character oem) fill the stalled socket's buffers; keep checking until its
    # backlog overflowed (it is then dropped, and the client will catch up from the database).
    while metric(server, "coreroll_feed_overflows_total") == 0:
        assert n < 20_000, f"the stalled client never fell behind after {n} checks"
        for _ in range(10):
            register(server, n, apps=16, oem="o" * 255)  # 16 machines, 16 events of ~1 KB
            n += 16
        last = get(server, "/api/v1/info")["feed_id"]
        assert live.read_until(last)[-1] == last  # the other client keeps up meanwhile
    for _ in range(20):  # and checks keep being answered while it is still stalled
        register(server, n)
        n += 1
    last = get(server, "/api/v1/info")["feed_id"]
    expected = list(range(head + 1, last + 1))
    assert live.read_until(last) == expected
    assert stalled.read_until(last) == expected  # every change, in order, none twice
    assert metric(server, catchups) > initial  # it did catch up from the database
    live.close()
    stalled.close()
