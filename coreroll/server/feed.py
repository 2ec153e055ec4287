"""The live feed: ``GET /api/v1/feed`` as Server-Sent Events (see docs/api.md).

Every change row (``changes`` table) becomes ``event: <kind>`` / ``id: <change id>`` /
``data: <json>``. Ids come from the database and are written in the same transaction as the
change, so a client that reconnects with ``Last-Event-ID: N`` gets every committed change after
N, across server restarts. Waiting clients are woken in-process on commit; with several servers on
one PostgreSQL they also poll every second. ``: keepalive`` comments keep idle connections open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from coreroll.server.metrics import Metrics
from coreroll.server.storage import Storage
from coreroll.wirenum import parse_int

KEEPALIVE_SECONDS = 15.0
BATCH = 500


def parse_last_id(header: str | None, query: str | None, max_id: int) -> int | None:
    """The position to resume after: the ``Last-Event-ID`` header, else ``?after=``, else None
    (the head). Empty values count as absent (an EventSource whose last id was empty sends one);
    anything else must be ASCII digits up to ``max_id``, else ``NumberError`` naming it."""
    for raw, name in ((header, "Last-Event-ID"), (query, "after")):
        if raw is not None and raw.strip():
            return parse_int(raw, name, 0, max_id)
    return None


async def event_stream(
    storage: Storage, metrics: Metrics, after: int | None, stopping: asyncio.Event
) -> AsyncIterator[str]:
    metrics.feed_clients.inc()
    try:
        yield "retry: 2000\n\n"
        if after is None:
            after = await storage.current_head()
        elif after > 0:
            oldest = await storage.oldest_change()
            head = await storage.current_head()
            if after > head:  # another database, or a made-up id: waiting for it would show nothing
                yield (
                    f'event: reset\ndata: {{"feed_id": {head}, "reason": "changes after {after} do not exist '
                    f'(the newest is {head}); reload /api/v1/snapshot"}}\n\n'
                )
                after = head
            elif oldest > after + 1:
                yield (
                    f'event: reset\ndata: {{"feed_id": {head}, "reason": "changes after {after} are no longer '
                    f'retained (oldest is {oldest}); reload /api/v1/snapshot"}}\n\n'
                )
                after = head
        poll = None if storage.is_sqlite else 1.0
        quiet_since = time.monotonic()
        while not stopping.is_set():
            rows = await storage.changes_after(after, BATCH)
            if rows:
                chunk = []
                for change_id, kind, data in rows:
                    chunk.append(f"event: {kind}\nid: {change_id}\ndata: {data}\n\n")
                    after = change_id
                yield "".join(chunk)
                quiet_since = time.monotonic()
                if len(rows) == BATCH:
                    continue
            if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            wait = KEEPALIVE_SECONDS if poll is None else poll
            await _wait_any(storage.wait_for_change(after, wait), stopping)
    finally:
        metrics.feed_clients.dec()


async def _wait_any(change: object, stopping: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(change), asyncio.ensure_future(stopping.wait())]  # type: ignore[arg-type]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
