"""The dashboard's update-server source: a snapshot, then the live feed from the snapshot's id.

    source = FeedSource("http://127.0.0.1:8400", sink)   # sink: Callable[[Update], None]
    await source.run()                                    # until cancelled or source.stop()

Each connection: `GET /api/v1/snapshot` (channels, groups, instances, recent activity and the
`feed_id` they are consistent with; a server without it is read with `GET /api/v1/channels`,
`/groups`, `/instances` (paged) and `/activity`) -> one `FeedSnapshot`; then `GET /api/v1/feed`
(Server-Sent Events, httpx-sse) with `Last-Event-ID: <last id>` -> a `FeedEvent` per event. An
`event: reset` (our id is older than the server keeps) starts over with a fresh snapshot.

Faults: when the stream breaks, the server stops answering `/healthz` (probed every
`probe_interval` s, since an idle stream only carries a keepalive every 15 s) or a reply is not
what the API documents, the source reports `Connection("server", "down", reason)`, waits (backoff)
and starts over with a new snapshot, so what changed meanwhile (including removals) is picked up.
With `token` (the admin token the dashboard has for its actions) every request carries
`Authorization: Bearer <token>`: the server always gives such a feed client a slot, however many
anonymous clients hold the others. No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from coreroll.textsafe import visible
from coreroll.watch import updates as u
from coreroll.watch.backoff import Backoff
from coreroll.watch.source_loop import ReconnectingSource
from coreroll.watch.views import CONNECTED, CONNECTING, DOWN

SOURCE = "server"
FEED_KINDS = frozenset({"instance", "channel", "group", "activity", "release"})


class FeedError(Exception):
    """The server answered something the API does not document; the message says what and where."""


class ResetRequested(Exception):
    """The feed asked us to reload the snapshot."""


def describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{exc.request.url.path}: HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class FeedSource(ReconnectingSource):
    """See the module docstring. `last_id` is the last feed id applied."""

    source_name = SOURCE

    def __init__(
        self,
        server_url: str,
        sink: u.Sink,
        *,
        probe_interval: float = 1.0,
        probe_timeout: float = 3.0,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.sink = sink
        self.probe_interval = probe_interval
        # a busy etcd/server may take a few seconds to answer; interval + timeout stays under the
        # 5 s in which the header must say a source is gone
        self.probe_timeout = probe_timeout
        self.timeout = timeout
        self.backoff = backoff or Backoff(0.2, 3.0)
        self.clock = clock
        self.transport = transport
        self.last_id: str | None = None
        self.resyncs = 0
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _cycle(self) -> None:
        self._state(CONNECTING, self.server_url)
        # the stream itself has no read timeout: the probe notices a dead server instead
        timeout = httpx.Timeout(self.timeout, read=None)
        async with httpx.AsyncClient(
            base_url=self.server_url, timeout=timeout, transport=self.transport, headers=self.headers
        ) as http:
            try:
                while True:
                    snapshot = await self._snapshot(http)
                    self.last_id = snapshot.last_id
                    self.sink(snapshot)
                    self.resyncs += 1
                    self._state(CONNECTED, self.server_url)
                    self.backoff.reset()
                    try:
                        await self._follow(http)
                    except ResetRequested:
                        continue  # straight to a new snapshot, no backoff: the server is fine
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._state(DOWN, describe(exc))

    async def _get(self, http: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
        reply = await http.get(path, params=params or None)
        reply.raise_for_status()
        try:
            data = reply.json()
        except ValueError:
            raise FeedError(f"{path}: reply is not JSON") from None
        if not isinstance(data, dict):
            raise FeedError(f"{path}: expected a JSON object")
        return data

    async def _snapshot(self, http: httpx.AsyncClient) -> u.FeedSnapshot:
        try:
            data = await self._get(http, "/api/v1/snapshot")
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            data = await self._snapshot_by_parts(http)
        lists = {}
        for name in ("channels", "groups", "instances", "activity"):
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise FeedError(f"/api/v1/snapshot: {name!r} is not a list of objects")
            lists[name] = tuple(value)
        feed_id = data.get("feed_id")
        return u.FeedSnapshot(
            channels=lists["channels"],
            groups=lists["groups"],
            instances=lists["instances"],
            activity=lists["activity"],
            last_id=None if feed_id is None else str(feed_id),
        )

    async def _snapshot_by_parts(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """For a server without /api/v1/snapshot: the feed id is taken first, so nothing is missed
        (an object may then arrive twice, which the model tolerates)."""
        channels = await self._get(http, "/api/v1/channels")
        groups = await self._get(http, "/api/v1/groups")
        instances: list[dict[str, Any]] = []
        while True:
            page = await self._get(http, "/api/v1/instances", limit=10000, offset=len(instances))
            batch = page.get("instances") or []
            total = page.get("total", 0)
            if not isinstance(batch, list) or type(total) is not int:
                raise FeedError("/api/v1/instances: 'instances' is not a list or 'total' not an integer")
            instances.extend(batch)
            if not batch or len(instances) >= total:
                break
        activity = await self._get(http, "/api/v1/activity", after=0, limit=200)
        return {
            "feed_id": channels.get("feed_id"),
            "channels": channels.get("channels", []),
            "groups": groups.get("groups", []),
            "instances": instances,
            "activity": activity.get("activity", []),
        }

    async def _follow(self, http: httpx.AsyncClient) -> None:
        headers = {"Last-Event-ID": self.last_id} if self.last_id is not None else {}
        probe = asyncio.create_task(self._probe(http))
        stream = asyncio.create_task(self._stream(http, headers))
        try:
            done, _ = await asyncio.wait({probe, stream}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises the reason
            raise ConnectionError("the server closed the feed")
        finally:
            for task in (probe, stream):
                task.cancel()
            for task in (probe, stream):
                with contextlib.suppress(BaseException):
                    await task

    async def _stream(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        params = {} if self.last_id is not None else {"after": "0"}
        async with aconnect_sse(http, "GET", "/api/v1/feed", headers=headers, params=params) as events:
            if events.response.status_code != 200:  # e.g. 503 at the server's feed client limit: say why
                await events.response.aread()
                try:
                    error = str(events.response.json().get("error"))
                except (ValueError, AttributeError):
                    error = events.response.text
                code = events.response.status_code
                raise FeedError(f"/api/v1/feed: HTTP {code}: {visible(error.strip()[:200])}")
            async for sse in events.aiter_sse():
                if sse.event == "reset":
                    raise ResetRequested(sse.data)
                if sse.event not in FEED_KINDS:
                    continue
                try:
                    data = json.loads(sse.data)
                except ValueError:
                    raise FeedError(f"/api/v1/feed: event {sse.id} ({sse.event}) is not JSON") from None
                if not isinstance(data, dict):
                    raise FeedError(f"/api/v1/feed: event {sse.id} ({sse.event}) is not an object")
                if sse.id:
                    self.last_id = sse.id
                self.sink(u.FeedEvent(sse.event, sse.id or None, data))

    async def _probe(self, http: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                reply = await http.get("/healthz", timeout=self.probe_timeout)
            except httpx.TimeoutException:
                raise FeedError(
                    f"server stopped answering (no reply to /healthz within {self.probe_timeout:g} s)"
                ) from None
            if reply.status_code >= 500:
                raise FeedError(f"/healthz: HTTP {reply.status_code} {reply.text[:100]}")
