"""One queue per shared httpx client for the engines' Omaha requests, so a thousand agents do not
queue inside httpcore.

httpcore's connection pool re-scans every pooled connection and every queued request whenever a
request starts or ends, so with hundreds of requests waiting (a fleet's first checks, a rollout's
downloads) its CPU grows with the square of the queue. Queueing in front of the pool instead, on
an asyncio.Semaphore sized below the pool, keeps the pool's queue short and each wait O(1).
Payload downloads do not take a slot (a throttled transfer holds its connection for its whole
simulated duration, and a fleet's downloads must overlap).

Public API: `http_slots(client) -> asyncio.Semaphore` (one per client, created on first use with
`DEFAULT_SLOTS`).
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

DEFAULT_SLOTS = 24

_slots: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def http_slots(client: httpx.AsyncClient) -> asyncio.Semaphore:
    slots = _slots.get(client)
    if slots is None:
        slots = _slots[client] = asyncio.Semaphore(DEFAULT_SLOTS)
    return slots
