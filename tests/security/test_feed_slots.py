"""Feed slots (issue 16, defect 2), against the real server: anonymous clients are limited per
address (an IPv6 /64 counts as one), a dashboard sending the admin token always gets a slot, even
while anonymous clients hold all of them, and a client that stops reading (4 KiB receive buffer)
is dropped within --write-timeout, giving its slot back. Before: 256 clients that never read held
every slot for as long as they liked, and every dashboard showed `server: DOWN`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coreroll.watch.backoff import Backoff
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from coreroll.watch.views import CONNECTED, DOWN
from tests.faults.counts import check, record
from tests.server.conftest import start
from tests.server.helpers import metric
from tests.server.test_feed_fanout import RawFeed, register
from tests.watch.helpers import check_in, wait_model

SLACK = 3.0  # seconds past a bound the server may take on a loaded 2-core machine (sweeps: 0.5 s)


def forwarded(address: str) -> str:
    return f"X-Forwarded-For: {address}\r\n"


async def dashboard(url: str, token: str | None, change: Callable[[], None]) -> list[str]:
    """The states a dashboard's feed source goes through against ``url`` until it is down, or
    until it shows a machine that ``change()`` registers after it connected (the live feed works)."""
    buffer, model = UpdateBuffer(), FleetModel()
    source = FeedSource(url, buffer.put, token=token, backoff=Backoff(0.5, 0.5), probe_interval=0.5)
    task = asyncio.create_task(source.run())
    seen: list[str] = []
    changed = False

    def settled(m: FleetModel) -> bool:
        nonlocal changed
        state = m.connections.get("server")
        if state is not None and (not seen or seen[-1] != f"{state.status}: {state.detail}"):
            seen.append(f"{state.status}: {state.detail}")
        if state is not None and state.status == DOWN:
            return True
        if state is not None and state.status == CONNECTED and not changed:
            change()
            changed = True
        return "slots-live" in m.rows

    try:
        await wait_model(model, buffer, settled, what="the dashboard to settle")
        return seen
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)


async def test_the_token_always_gets_a_slot_and_anonymous_ones_are_limited_per_address(
    tmp_path: Path,
) -> None:
    server = start(tmp_path, f"sqlite:///{tmp_path / 'server.db'}", max_feed_clients=5,
                   max_feed_clients_per_address=2, trusted_proxies=("127.0.0.0/8",))  # fmt: skip
    clients: list[RawFeed] = []
    try:

        def connect(headers: str = "") -> RawFeed:
            client = RawFeed(server.url, headers=headers)
            clients.append(client)
            return client

        # Two from one address (behind the trusted proxy), the third refused naming the limit.
        assert [connect(forwarded("203.0.113.7")).status for _ in range(2)] == [200, 200]
        third = connect(forwarded("203.0.113.7"))
        assert third.status == 429 and "retry-after: 10" in third.head.lower()
        error = third.rest()
        assert "203.0.113.7" in error and "--max-feed-clients-per-address 2" in error and "token" in error
        # IPv6 addresses of one /64 are one host's.
        assert connect(forwarded("2001:db8::1")).status == 200
        assert connect(forwarded("2001:db8::ffff:2")).status == 200
        assert connect(forwarded("2001:db8::3")).status == 429
        assert connect(forwarded("2001:db8:0:1::3")).status == 200  # another /64: all 5 slots taken now
        full = connect(forwarded("198.51.100.9"))
        assert full.status == 503 and "feed client limit reached: 5" in full.rest()
        record("feed_clients_refused", 3, suite="security")
        # Every anonymous slot is held: a dashboard without the token is down, with the reason...
        seen = await dashboard(server.url, None, lambda: None)
        assert seen[-1].startswith(DOWN) and "HTTP 503" in seen[-1], seen
        # ...and the operator's dashboard, with the token, connects and follows the live feed
        # (before: the same 503).
        seen = await dashboard(server.url, server.token, lambda: check_in(server.url, "slots-live"))
        problems = [s for s in seen if s.startswith(DOWN)] + (
            [] if seen[-1].startswith(CONNECTED) else seen[-1:]
        )
        assert not check("dashboard_with_token_connects_while_anonymous_slots_are_full", problems, "security")
        token = f"Authorization: Bearer {server.token}\r\n"
        assert [connect(token + forwarded("203.0.113.7")).status for _ in range(3)] == [200] * 3
        assert metric(server, "coreroll_feed_clients") == 5 + 3
    finally:
        for client in clients:
            client.close()
        server.stop()


@pytest.mark.slow
def test_a_feed_client_that_stops_reading_is_dropped_within_the_write_timeout(tmp_path: Path) -> None:
    write_timeout = 1.0
    server = start(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", max_feed_clients=1, write_timeout=write_timeout
    )
    try:
        stalled = RawFeed(server.url, last_id=0, rcvbuf=4096)  # reads its headers, then nothing
        waiting = RawFeed(server.url)
        assert waiting.status == 503  # the one anonymous slot is held
        waiting.close()
        # 64 changes of ~1 KB (255-character oem) overflow its 4 KiB receive buffer many times:
        # from the first few on, it takes nothing more while bytes wait for it.
        for n in range(0, 64, 16):
            register(server, n, apps=16, oem="o" * 255)
        stalled_by = time.monotonic()
        # It is dropped within the write timeout (before: never; it held the slot for ever).
        deadline = stalled_by + write_timeout + SLACK + 5
        while metric(server, "coreroll_feed_clients") > 0:
            assert time.monotonic() < deadline, "the stalled feed client was never dropped"
            time.sleep(0.05)
        dropped_after = time.monotonic() - stalled_by
        record("feed_clients_stalled", 1, suite="security")
        late = dropped_after > write_timeout + SLACK
        problems = [f"dropped {dropped_after:.2f} s after it had stalled"] if late else []
        assert not check("stalled_feed_client_dropped_within_write_timeout", problems, "security")
        assert metric(server, 'coreroll_connections_dropped_total{reason="write_timeout"}') == 1
        again = RawFeed(server.url)  # its slot is free again
        assert again.status == 200
        again.close()
        stalled.close()
    finally:
        server.stop()
