"""FeedSource's handling of the feed protocol's rarer turns, over httpx.MockTransport (pure client
logic: `event: reset`, and a reply that is not what docs/api.md says)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from tests.watch.helpers import wait_model


def snapshot(feed_id: int, version: str) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "channels": [{"name": "beta", "version": version, "updated_at": None}],
        "groups": [],
        "instances": [],
        "activity": [],
    }


async def sse(*events: str) -> AsyncIterator[bytes]:
    for event in events:
        yield event.encode()
    await asyncio.Event().wait()  # never set: the stream stays open


class FakeServer:
    def __init__(self, feeds: list[tuple[str, ...]], snapshots: list[dict[str, Any]]) -> None:
        self.feeds = feeds
        self.snapshots = snapshots
        self.last_event_ids: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/snapshot":
            return httpx.Response(200, json=self.snapshots.pop(0))
        if request.url.path == "/api/v1/feed":
            self.last_event_ids.append(request.headers.get("Last-Event-ID"))
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=sse(*self.feeds.pop(0))
            )
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(404, json={"error": "no such path"})


async def run_until(server: FakeServer, predicate: Any, what: str) -> tuple[FleetModel, FeedSource]:
    buffer = UpdateBuffer()
    model = FleetModel()
    source = FeedSource("http://coreroll.test", buffer.put, transport=httpx.MockTransport(server))
    task = asyncio.create_task(source.run())
    try:
        await wait_model(model, buffer, predicate, what=what)
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)
    return model, source


async def test_reset_reloads_the_snapshot_without_an_outage() -> None:
    reset = 'event: reset\ndata: {"feed_id": 40, "reason": "changes after 7 are no longer retained"}\n\n'
    channel = 'event: channel\nid: 41\ndata: {"name": "beta", "version": "3", "updated_at": null}\n\n'
    server = FakeServer(feeds=[(reset,), (channel,)], snapshots=[snapshot(7, "1"), snapshot(40, "2")])
    model, source = await run_until(
        server, lambda m: m.channel_version("beta") == "3", "the event after the reset"
    )
    assert server.last_event_ids == ["7", "40"]
    assert source.resyncs == 2 and source.last_id == "41"
    assert not any(e.kind == "Connection" for e in model.activity)  # never reported down


async def test_an_event_that_is_not_json_is_named() -> None:
    bad = "event: instance\nid: 8\ndata: {not json\n\n"
    server = FakeServer(feeds=[(bad,)], snapshots=[snapshot(7, "1")])
    model, _ = await run_until(server, lambda m: m.connections["server"].status == "down", "the source down")
    assert model.connections["server"].detail == "/api/v1/feed: event 8 (instance) is not JSON"
    assert model.channel_version("beta") == "1"  # what the snapshot said is kept


async def test_a_snapshot_of_the_wrong_shape_is_named() -> None:
    server = FakeServer(feeds=[], snapshots=[{"feed_id": 1, "channels": {"beta": "1"}}])
    model, _ = await run_until(server, lambda m: m.connections["server"].status == "down", "the source down")
    assert model.connections["server"].detail == "/api/v1/snapshot: 'channels' is not a list of objects"
    assert model.channels() == []
