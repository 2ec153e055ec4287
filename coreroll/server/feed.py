"""The live feed: ``GET /api/v1/feed`` as Server-Sent Events (see docs/api.md).

Every change row (``changes`` table) becomes ``event: <kind>`` / ``id: <change id>`` /
``data: <json>``. Ids come from the database and are written in the same transaction as the
change, so a client that reconnects with ``Last-Event-ID: N`` gets every committed change after
N, across server restarts. ``: keepalive`` comments keep idle connections open.

Fan-out: one ``FeedHub`` task per server reads new changes once, formats them once and appends the
text to each client's bounded backlog; a commit (an Omaha check, an admin call) only sets an
event. (Each client used to run its own query on every commit: with 300 clients one writing
Omaha check cost 300 queries on the pool the Omaha path needs, and checks went from 2 ms to
214 ms.) The hub fans out at most every ``FAN_OUT_INTERVAL`` seconds, so the work per client does
not grow with the commit rate (and each chunk is encoded once, for all). A client reads the change log itself only to catch up: on connect,
and when it fell ``BACKLOG`` fan-outs behind (a slow or stalled reader: its backlog is dropped
and it resumes from its last id, so it loses nothing and holds up nobody). With several servers
on one PostgreSQL the hub also polls every second.

Slots (issue 16, defect 2): at most ``max_clients`` anonymous clients, and ``per_address`` from one
client address (an IPv6 address counts as its /64; loopback is exempt, as for new instances); one
more is refused (``FeedHub.subscribe`` raises ``FeedRefused``: 503 for the total, 429 for the
address). A client sending the admin token (the operator's dashboard) is counted in neither, so it
always gets a slot. A client that stops reading is dropped by the connection guard's write timeout
(``coreroll.server.connguard``), which gives its slot back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from coreroll.server.limits import SourceLimiter
from coreroll.server.metrics import Metrics
from coreroll.server.storage import Storage
from coreroll.wirenum import parse_int

log = logging.getLogger("coreroll.server.feed")
KEEPALIVE_SECONDS = 15.0
BATCH = 500
FAN_OUT_INTERVAL = 0.1  # seconds between fan-outs under load: commits meanwhile share one
BACKLOG = 64  # fan-outs a client may be behind before it catches up from the database instead
RETRY_AFTER_ERROR = 1.0
KEEPALIVE = b": keepalive\n\n"


def parse_last_id(header: str | None, query: str | None, max_id: int) -> int | None:
    """The position to resume after: the ``Last-Event-ID`` header, else ``?after=``, else None
    (the head). Empty values count as absent (an EventSource whose last id was empty sends one);
    anything else must be ASCII digits up to ``max_id``, else ``NumberError`` naming it."""
    for raw, name in ((header, "Last-Event-ID"), (query, "after")):
        if raw is not None and raw.strip():
            return parse_int(raw, name, 0, max_id)
    return None


def _format(rows: list[tuple[int, str, str]]) -> bytes:
    text = "".join(f"event: {kind}\nid: {change_id}\ndata: {data}\n\n" for change_id, kind, data in rows)
    return text.encode()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One fan-out: the changes ``first``..``last`` as SSE bytes (encoded once, sent to every
    client as they are), and each event on its own (a client that already has some of them sends
    only the rest)."""

    first: int
    last: int
    data: bytes
    events: tuple[tuple[int, bytes], ...]


class FeedRefused(Exception):
    """No slot for this client: ``status`` (503: all anonymous slots taken or the server stops;
    429: its address has its share) and a message saying which limit and how to get past it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def address_key(address: str) -> str | None:
    """What a client address is counted under: the address, an IPv6 address's /64 (one host
    usually has the whole /64), or None when it is not limited (loopback)."""
    if SourceLimiter.exempt(address):
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Subscriber:
    """One connected client's backlog. Filled by the hub (never blocks), drained by the client.
    ``counted``: anonymous (it holds one of ``max_clients``); ``address``: its per-address key."""

    __slots__ = ("address", "backlog", "closed", "counted", "overflowed", "wake")

    def __init__(self, counted: bool = True, address: str | None = None) -> None:
        self.backlog: deque[Chunk | None] = deque()  # None: a keepalive
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closed = False
        self.counted = counted
        self.address = address

    def push(self, chunk: Chunk | None) -> bool:
        """Hand ``chunk`` over; True when this one made the backlog overflow."""
        if self.overflowed:
            return False  # the client catches up from the database when it gets to read again
        self.wake.set()
        if len(self.backlog) >= BACKLOG:
            self.overflowed = True
            self.backlog.clear()
            return True
        self.backlog.append(chunk)
        return False

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class FeedHub:
    def __init__(
        self,
        storage: Storage,
        metrics: Metrics,
        max_clients: int,
        stopping: asyncio.Event,
        per_address: int = 0,
    ) -> None:
        self.storage = storage
        self.metrics = metrics
        self.max_clients = max_clients
        self.per_address = per_address  # 0: no per-address limit
        self.stopping = stopping
        self._subscribers: set[Subscriber] = set()
        self._anonymous = 0
        self._by_address: Counter[str] = Counter()
        self._after = 0  # the last change fanned out

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self, address: str = "", authenticated: bool = False) -> Subscriber:
        """A new client's backlog; ``FeedRefused`` when it gets no slot (module docstring)."""
        if self.stopping.is_set():
            raise FeedRefused(503, "the server is shutting down")
        if authenticated:
            subscriber = Subscriber(counted=False)
        else:
            key = address_key(address)
            if self._anonymous >= self.max_clients:
                self.metrics.feed_refused.inc()
                raise FeedRefused(
                    503,
                    f"feed client limit reached: {self.max_clients} clients are connected; start the "
                    f"server with --max-feed-clients N (N > {self.max_clients}) to allow more, or "
                    "send the admin token (a dashboard with --token always gets a slot)",
                )
            if key is not None and self.per_address and self._by_address[key] >= self.per_address:
                self.metrics.feed_refused.inc()
                raise FeedRefused(
                    429,
                    f"feed client limit per address reached: {self._by_address[key]} clients from "
                    f"{key} are connected (--max-feed-clients-per-address {self.per_address}); close "
                    "one, or send the admin token (a dashboard with --token always gets a slot)",
                )
            subscriber = Subscriber(counted=True, address=key)
            self._anonymous += 1
            if key is not None:
                self._by_address[key] += 1
        self._subscribers.add(subscriber)
        self.metrics.feed_clients.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
            self.metrics.feed_clients.dec()
            if subscriber.counted:
                self._anonymous -= 1
            if subscriber.address is not None:
                self._by_address[subscriber.address] -= 1
                if self._by_address[subscriber.address] <= 0:
                    del self._by_address[subscriber.address]

    def close(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()

    async def run(self) -> None:
        """Fan out until the server stops; a failing database is logged and retried."""
        poll = None if self.storage.is_sqlite else 1.0
        self._after = self.storage.head
        quiet_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                wait = KEEPALIVE_SECONDS if poll is None else poll
                await _wait_any(self.storage.wait_for_change(self._after, wait), self.stopping)
                if self.stopping.is_set():
                    break
                if not self._subscribers:
                    # Nobody to send to: skip ahead (a client that connects catches up by itself).
                    self._after = max(self._after, self.storage.head)
                    quiet_since = time.monotonic()
                    continue
                try:
                    self.metrics.feed_reads.labels("fanout").inc()
                    rows = await self.storage.changes_after(self._after, BATCH)
                except Exception:
                    log.exception("reading the change log for the feed failed; retrying")
                    await _wait_any(asyncio.sleep(RETRY_AFTER_ERROR), self.stopping)
                    continue
                if rows:
                    events = tuple((row[0], _format([row])) for row in rows)
                    chunk = Chunk(rows[0][0], rows[-1][0], b"".join(data for _, data in events), events)
                    self._after = chunk.last
                    overflows = sum(subscriber.push(chunk) for subscriber in self._subscribers)
                    if overflows:
                        self.metrics.feed_overflows.inc(overflows)
                    quiet_since = time.monotonic()
                    if len(rows) < BATCH:
                        await asyncio.sleep(FAN_OUT_INTERVAL)
                elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    for subscriber in self._subscribers:
                        subscriber.push(None)
                    quiet_since = time.monotonic()
        finally:
            self.close()

    async def stream(self, subscriber: Subscriber, after: int | None) -> AsyncGenerator[bytes, None]:
        """The SSE bytes for one client, from after ``after`` (None: from the head)."""
        yield b"retry: 2000\n\n"
        storage = self.storage
        if after is None:
            after = await storage.current_head()
        while True:
            # Catch up from the database (on connect, and after the backlog overflowed). The
            # backlog is emptied first: whatever it held is committed, so the read covers it.
            subscriber.overflowed = False
            subscriber.backlog.clear()
            reset, after = await self._check_position(after)
            if reset:
                yield reset
            while True:
                self.metrics.feed_reads.labels("catchup").inc()
                rows = await storage.changes_after(after, BATCH)
                if rows:
                    after = rows[-1][0]
                    yield _format(rows)
                if len(rows) < BATCH:
                    break
            # Live: what the hub hands over (possibly some already sent: skipped by id).
            while not subscriber.overflowed:
                if subscriber.closed or self.stopping.is_set():
                    return
                if not subscriber.backlog:
                    subscriber.wake.clear()
                    await subscriber.wake.wait()
                    continue
                chunk = subscriber.backlog.popleft()
                if chunk is None:
                    yield KEEPALIVE
                elif chunk.last > after:
                    if chunk.first > after:
                        yield chunk.data
                    else:
                        yield b"".join(data for change_id, data in chunk.events if change_id > after)
                    after = chunk.last

    async def _check_position(self, after: int) -> tuple[bytes | None, int]:
        """A ``reset`` event (and the head to continue after) when ``after`` cannot be resumed from."""
        if after <= 0:
            return None, after
        oldest = await self.storage.oldest_change()
        head = await self.storage.current_head()
        if after > head:  # another database, or a made-up id: waiting for it would show nothing
            reason = f"changes after {after} do not exist (the newest is {head})"
        elif oldest > after + 1:
            reason = f"changes after {after} are no longer retained (oldest is {oldest})"
        else:
            return None, after
        reset = (
            f'event: reset\ndata: {{"feed_id": {head}, "reason": "{reason}; reload /api/v1/snapshot"}}\n\n'
        )
        return reset.encode(), head


class FeedResponse(StreamingResponse):
    """The SSE response; the client's slot is given back however the response ends (even when the
    client is gone before the stream started, when the generator's own ``finally`` never runs)."""

    def __init__(self, hub: FeedHub, subscriber: Subscriber, after: int | None) -> None:
        self.stream = hub.stream(subscriber, after)
        super().__init__(
            self.stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.hub = hub
        self.subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.unsubscribe(self.subscriber)
            with contextlib.suppress(Exception):
                await self.stream.aclose()


async def _wait_any(change: Awaitable[object], stopping: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(change), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
