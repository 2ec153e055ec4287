"""Read API (no auth): ``/api/v1/info``, ``snapshot``, ``channels``, ``releases``, ``groups``,
``groups/{id}``, ``instances``, ``instances/{id}``, ``instances/{id}/history``, ``activity``,
``sync`` (the upstream sync: coreroll.server.sync_state) and the SSE ``feed`` (the admin token, when
sent, gets a feed slot past the client limits). Shapes: docs/api.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from coreroll import __version__
from coreroll.omaha.codes import APP_ID
from coreroll.server import schema
from coreroll.server.auth import token_matches
from coreroll.server.catalog import CatalogError
from coreroll.server.feed import FeedRefused, FeedResponse, parse_last_id
from coreroll.server.records import activity_json, status_code
from coreroll.server.state import ServerState, base_url, core
from coreroll.server.sync_state import sync_report
from coreroll.wirenum import NumberError, parse_int

router = APIRouter(prefix="/api/v1")
MAX_LIMIT = 10_000
MAX_CURSOR = 256  # characters of an ?after= cursor (machine ids are at most 128)


def _int(value: str | None, name: str, default: int, low: int = 0, high: int = 2**62) -> int:
    if value is None or value == "":
        return default
    try:
        return parse_int(value, name, low, high)
    except NumberError as exc:
        raise CatalogError(400, f"query parameter {exc}") from None


def _bool(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise CatalogError(400, f"query parameter {name}={value!r}: expected true or false")


async def _state(request: Request) -> ServerState:
    state = core(request)
    await state.catalog.maybe_refresh()  # several servers on one PostgreSQL: see their changes
    return state


@router.get("/info")
async def info(request: Request) -> dict[str, Any]:
    state = await _state(request)
    return {
        "server": "coreroll",
        "version": __version__,
        "app_id": APP_ID,
        "feed_id": await state.storage.current_head(),
        "stale_window_seconds": state.settings.stale_window_seconds,
        "channels": [c["name"] for c in state.catalog.channel_list()],
    }


async def _activity(request: Request, after: int, limit: int, newest: bool = False) -> list[dict[str, Any]]:
    a = schema.activity
    query = select(a).where(a.c.id > after)
    query = query.order_by(a.c.id.desc() if newest else a.c.id).limit(limit)
    async with core(request).storage.read() as conn:
        rows = [activity_json(r._mapping) for r in await conn.execute(query)]
    return rows[::-1] if newest else rows


@router.get("/snapshot")
async def snapshot(request: Request) -> dict[str, Any]:
    state = await _state(request)
    feed_id = await state.storage.current_head()  # first: anything later is replayed by the feed
    limit = _int(request.query_params.get("limit"), "limit", 1_000_000, 0)
    instances, _ = await state.registry.list(now=state.settings.clock(), limit=limit)
    return {
        "feed_id": feed_id,
        "channels": state.catalog.channel_list(),
        "groups": state.catalog.group_list(),
        "releases": state.catalog.release_list(base_url(request)),
        "instances": instances,
        "activity": await _activity(request, 0, 200, newest=True),
    }


@router.get("/channels")
async def channels(request: Request) -> dict[str, Any]:
    state = await _state(request)
    return {"channels": state.catalog.channel_list(), "feed_id": state.storage.head}


@router.get("/releases")
async def releases(request: Request) -> dict[str, Any]:
    state = await _state(request)
    return {"releases": state.catalog.release_list(base_url(request)), "feed_id": state.storage.head}


@router.get("/groups")
async def groups(request: Request) -> dict[str, Any]:
    state = await _state(request)
    return {"groups": state.catalog.group_list(), "feed_id": state.storage.head}


@router.get("/groups/{group_id}")
async def group(request: Request, group_id: str) -> dict[str, Any]:
    return (await _state(request)).catalog.group(group_id).to_json()


@router.get("/instances")
async def instances(request: Request) -> dict[str, Any]:
    state = core(request)
    q = request.query_params
    status = None
    if q.get("status"):
        status = status_code(q["status"])
        if status is None:
            raise CatalogError(400, f"query parameter status={q['status']!r} is not an instance status")
    limit = _int(q.get("limit"), "limit", 100, 1, MAX_LIMIT)
    offset = _int(q.get("offset"), "offset", 0)
    after = q.get("after")
    if after is not None:
        if offset:
            raise CatalogError(400, "query parameters after and offset: give one or the other")
        if len(after) > MAX_CURSOR:
            raise CatalogError(400, f"query parameter after: over {MAX_CURSOR} characters (a machine id)")
    feed_id = state.storage.head
    items, total = await state.registry.list(
        now=state.settings.clock(),
        group=q.get("group") or None,
        status=status,
        track=q.get("channel") or None,
        version=q.get("version") or None,
        stale=_bool(q.get("stale"), "stale"),
        limit=limit + 1,  # one more tells whether there is a next page
        offset=offset,
        after=after,
    )
    more = len(items) > limit
    del items[limit:]
    return {
        "instances": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next": items[-1]["machine_id"] if more else None,
        "feed_id": feed_id,
    }


@router.get("/instances/{machine_id}")
async def instance(request: Request, machine_id: str) -> dict[str, Any]:
    state = core(request)
    found = await state.registry.one(machine_id, state.settings.clock())
    if found is None:
        raise CatalogError(404, f"no instance {machine_id!r}")
    found["history"] = await state.registry.history(machine_id)
    return found


@router.get("/instances/{machine_id}/history")
async def instance_history(request: Request, machine_id: str) -> dict[str, Any]:
    limit = _int(request.query_params.get("limit"), "limit", 100, 1, MAX_LIMIT)
    return {"history": await core(request).registry.history(machine_id, limit)}


@router.get("/sync")
async def sync_status(request: Request) -> dict[str, Any]:
    state = await _state(request)
    return await sync_report(state.storage, state.catalog, state.syncer.status() if state.syncer else None)


@router.get("/activity")
async def activity(request: Request) -> dict[str, Any]:
    q = request.query_params
    after = _int(q.get("after"), "after", 0, 0, core(request).storage.max_id)
    limit = _int(q.get("limit"), "limit", 500, 1, MAX_LIMIT)
    return {"activity": await _activity(request, after, limit)}


@router.get("/feed")
async def feed(request: Request) -> Response:
    state = core(request)
    try:
        after = parse_last_id(
            request.headers.get("last-event-id"), request.query_params.get("after"), state.storage.max_id
        )
    except NumberError as exc:
        raise CatalogError(400, f"feed position: {exc}") from None
    authenticated = token_matches(request.headers.get("authorization"), state.token)
    try:
        subscriber = state.feed.subscribe(state.client_address(request), authenticated)
    except FeedRefused as refused:
        return JSONResponse(
            {"error": refused.message}, status_code=refused.status, headers={"Retry-After": "10"}
        )
    return FeedResponse(state.feed, subscriber, after)
