"""Admin API (``Authorization: Bearer TOKEN``): publish releases (uploaded, synthetic, or served
elsewhere: URL mode), point, promote, pin and unpin channels, start an upstream sync pass, create
groups, change group policy, pause and resume. Shapes: docs/api.md."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from coreroll.server import pins
from coreroll.server.auth import token_matches
from coreroll.server.catalog import PAYLOAD, CatalogError
from coreroll.server.releases import DEFAULT_FILENAME
from coreroll.server.state import base_url, core
from coreroll.server.sync_state import sync_report
from coreroll.server.url_payloads import check_metadata
from coreroll.server.versions import DEFAULT_BOARD
from coreroll.wirenum import NumberError, parse_int


class Unauthorized(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def require_admin(request: Request) -> None:
    header = request.headers.get("authorization")
    if not token_matches(header, core(request).token):
        raise Unauthorized("missing bearer token" if not header else "wrong bearer token")


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)])


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 1024 * 1024:
        raise CatalogError(413, "JSON body is over 1 MiB")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise CatalogError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:  # json recurses per nesting level
        raise CatalogError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise CatalogError(400, "body must be a JSON object")
    return body


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise CatalogError(400, f"{key}: expected a non-empty string, got {value!r}")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _str(body, key)


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise CatalogError(400, f"{name}={value!r}: expected true or false")


def _published(request: Request, result: tuple[dict[str, Any], bool]) -> JSONResponse:
    """201 when something new was stored, 200 when the same file was already there (idempotent)."""
    release, created = result
    return JSONResponse(_linked(request, release["version"]), status_code=201 if created else 200)


def _linked(request: Request, version: str) -> dict[str, Any]:
    """The release with links from the origin this client used (the feed's come from the server's)."""
    return core(request).catalog.release_json(version, base_url(request))


@router.post("/releases", status_code=201)
async def publish(request: Request) -> Any:
    state = core(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        q = request.query_params
        version = q.get("version")
        if not version:
            raise CatalogError(400, "query parameter version is required for an upload")
        return _published(
            request,
            await state.publisher.publish_upload(
                request.stream(),
                version,
                q.get("channel") or None,
                q.get("filename") or DEFAULT_FILENAME,
                q.get("board") or DEFAULT_BOARD,
                q.get("kind") or PAYLOAD,
                _flag(q.get("opaque"), "opaque"),
            ),
        )
    body = await _json_object(request)
    if "url" in body:
        return _published(request, await _publish_url(request, body))
    if body.get("synthetic") is not True:
        raise CatalogError(
            400,
            'send {"synthetic": true, "version": ...} or {"url": ..., "size": ..., "sha256": ..., '
            '"sha1": ..., "version": ...} as JSON, or the payload as application/octet-stream',
        )
    size = body.get("image_size", 65536)
    if isinstance(size, bool) or not isinstance(size, int):
        raise CatalogError(400, f"image_size: expected an integer, got {size!r}")
    version = _optional_str(body, "version")  # default: today's CoreOS version
    board = _optional_str(body, "board") or DEFAULT_BOARD
    published = await state.publisher.publish_synthetic(version, _optional_str(body, "channel"), size, board)
    return _published(request, published)


async def _publish_url(request: Request, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """URL mode: a payload or extra served by another HTTP server, CDN or object store."""
    meta = check_metadata(body.get("url"), body.get("size"), body.get("sha256"), body.get("sha1"))
    return await core(request).publisher.publish_url(
        meta,
        _str(body, "version"),
        _optional_str(body, "channel"),
        _optional_str(body, "board") or DEFAULT_BOARD,
        _optional_str(body, "kind") or PAYLOAD,
        _optional_str(body, "format") or "update_engine",
    )


@router.put("/channels/{name}/pin")
async def pin_channel(request: Request, name: str) -> Any:
    body = await _json_object(request)
    return await pins.pin(core(request).catalog, name, _str(body, "version"))


@router.delete("/channels/{name}/pin")
async def unpin_channel(request: Request, name: str) -> Any:
    return await pins.unpin(core(request).catalog, name)


@router.post("/sync")
async def sync_now(request: Request) -> Any:
    """Start an upstream sync pass now; ``?wait=SECONDS`` (at most 3600) answers when it has ended."""
    state = core(request)
    if state.syncer is None:
        raise CatalogError(409, "this server does not sync: start it with --sync [URL]")
    raw = request.query_params.get("wait")
    if not raw:
        state.syncer.wake()
        return JSONResponse({"started": True}, status_code=202)
    try:
        wait = parse_int(raw, "wait", 1, 3600)
    except NumberError as exc:
        raise CatalogError(400, f"query parameter {exc}") from None
    if not await state.syncer.sync_now(float(wait)):
        raise CatalogError(504, f"the sync pass did not end within {wait} s; see GET /api/v1/sync")
    return await sync_report(state.storage, state.catalog, state.syncer.status())


@router.put("/releases/{version}/floor")
async def set_floor(request: Request, version: str) -> Any:
    body = await _json_object(request)
    floor = body.get("floor", True)
    if not isinstance(floor, bool):
        raise CatalogError(400, f"floor: expected true or false, got {floor!r}")
    reason = _optional_str(body, "reason")
    if reason is not None and len(reason) > 500:
        raise CatalogError(400, "reason: at most 500 characters")
    await core(request).catalog.set_floor(version, floor, reason)
    return _linked(request, version)


@router.put("/channels/{name}")
async def point_channel(request: Request, name: str) -> Any:
    body = await _json_object(request)
    return await core(request).catalog.point_channel(name, _str(body, "version"))


@router.post("/releases/{version}/promote")
async def promote(request: Request, version: str) -> Any:
    body = await _json_object(request)
    return await core(request).catalog.promote(version, _str(body, "to"))


@router.post("/groups", status_code=201)
async def create_group(request: Request) -> Any:
    return await core(request).catalog.create_group(await _json_object(request))


@router.put("/groups/{group_id}/policy")
async def set_policy(request: Request, group_id: str) -> Any:
    return await core(request).catalog.update_policy(group_id, await _json_object(request))


@router.post("/groups/{group_id}/pause")
async def pause(request: Request, group_id: str) -> Any:
    return await core(request).catalog.set_enabled(group_id, False)


@router.post("/groups/{group_id}/resume")
async def resume(request: Request, group_id: str) -> Any:
    return await core(request).catalog.set_enabled(group_id, True)


def unauthorized_response(exc: Unauthorized) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
