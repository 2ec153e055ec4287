"""``create_app(settings) -> FastAPI``: the update server as one ASGI app (routes: docs/api.md).

On startup (lifespan): open storage (schema created/checked), remove ``.upload-*`` temp files an
interrupted publish left in the packages dir (logged), load the catalog and create the default
channels and groups, record pre-board releases as amd64-usr payloads, count instances, load or
create the admin token, and start the retention task (``coreroll.server.retention``), the
feed's fan-out task (``coreroll.server.feed.FeedHub``) and, with ``settings.sync_url``, the upstream
sync (``coreroll.server.sync.Syncer``). With ``settings.omaha_secret`` the Omaha endpoint is
``/v1/update/<secret>/`` only (as Nebraska's ``--api-endpoint-suffix``): any other ``/v1/update/...``
path is a 404 that does not say whether a secret is set. With ``settings.public_url`` or trusted proxies,
``coreroll.server.forwarded.PublicOrigin`` gives each request the origin its client used, so every
absolute URL built from a request (codebase, API links, redirects) is one the client can reach. The Omaha route is a plain Starlette route (no FastAPI request models on the hot
path); ``settings.fixed_response_route`` adds ``POST /bench/fixed`` answering a constant noupdate
through the same stack, the framework ceiling the benchmark compares against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from coreroll.omaha.protocol import MAX_BODY
from coreroll.server import api_admin, api_read
from coreroll.server.auth import load_or_create_token
from coreroll.server.catalog import Catalog, CatalogError
from coreroll.server.feed import FeedHub
from coreroll.server.forwarded import PublicOrigin, in_networks
from coreroll.server.metrics import CONTENT_TYPE, Metrics
from coreroll.server.omaha_handler import TEXT, OmahaHandler
from coreroll.server.packages import serve_package
from coreroll.server.records import status_name
from coreroll.server.registry import Registry
from coreroll.server.releases import Publisher
from coreroll.server.retention import Retention
from coreroll.server.schema import MAX_IP
from coreroll.server.settings import ServerSettings
from coreroll.server.slashes import redirect_real_slashes
from coreroll.server.state import ServerState, base_url, core
from coreroll.server.storage import Storage
from coreroll.server.sync import Syncer
from coreroll.wirenum import parse_capped

log = logging.getLogger("coreroll.server")
FIXED_NOUPDATE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="coreroll">'
    b'<daystart elapsed_seconds="0"/><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok">'
    b'<ping status="ok"/><updatecheck status="noupdate"/><event status="ok"/></app></response>\n'
)


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    size = parse_capped(declared.strip(), cap + 1) if declared else None
    if size is not None and size > cap:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


def client_ip(request: Request, trusted: tuple[str, ...]) -> str:
    """The peer address, or the last untrusted X-Forwarded-For hop when the peer is a trusted proxy.

    A hop that is not an IP address ends the walk at the last trusted address (as nginx's realip
    does): it is neither stored nor counted as a source."""
    peer = request.client.host if request.client else ""
    if not trusted:  # the usual case: the headers are not even looked at
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if not forwarded or not in_networks(peer, trusted):
        return peer
    last_trusted = peer
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_ip(hop):
            return last_trusted
        if not in_networks(hop, trusted):
            return hop
        last_trusted = hop
    return last_trusted


def _is_ip(text: str) -> bool:
    """An IP address that fits the instances.ip column (an IPv6 zone id could make it any length)."""
    if len(text) > MAX_IP:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _wrong_secret(request: Request, secret: str | None) -> bool:
    given = request.path_params.get("secret")
    if secret is None:
        return given is not None
    return given is None or not hmac.compare_digest(given.encode(), secret.encode())


async def omaha_endpoint(request: Request) -> Response:
    state = core(request)
    if _wrong_secret(request, state.settings.omaha_secret):
        return Response("not found\n", 404, media_type=TEXT)
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        state.metrics.count("bad_request")
        return Response(f"bad omaha request: body is over {MAX_BODY} bytes\n", 400, media_type=TEXT)
    status, payload, media = await state.handler.handle(
        body, client_ip(request, state.settings.trusted_proxies), lambda: base_url(request)
    )
    return Response(payload, status, media_type=media)


async def fixed_endpoint(request: Request) -> Response:
    await read_capped(request, MAX_BODY)
    return Response(FIXED_NOUPDATE, 200, media_type="application/xml; charset=utf-8")


async def packages_endpoint(request: Request) -> Response:
    state = core(request)
    return await serve_package(request, state.catalog, state.settings.packages_dir)


async def healthz(request: Request) -> Response:
    try:
        await core(request).storage.ping()
    except Exception as exc:
        return JSONResponse({"status": "degraded", "db": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ok", "db": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    state = core(request)
    counts = [(g, status_name(s), n) for g, s, n in await state.registry.status_counts()]
    return Response(state.metrics.render(counts), media_type=CONTENT_TYPE)


def create_app(settings: ServerSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # token, keys, db
        storage = Storage(settings.database_url, settings.clock)
        await storage.start()
        public = settings.public_url or f"{settings.scheme}://{settings.listen}"
        catalog = Catalog(storage, public, None if storage.is_sqlite else 2.0)
        publisher = Publisher(settings, catalog)
        await asyncio.to_thread(publisher.clean_temp_files)
        await catalog.load()
        await catalog.ensure_defaults()
        await publisher.adopt_legacy()
        registry = Registry(storage, settings.stale_window_seconds, cache=storage.is_sqlite)
        await registry.load_count()
        metrics = Metrics()
        stopping = asyncio.Event()
        state = ServerState(
            settings=settings,
            storage=storage,
            catalog=catalog,
            registry=registry,
            metrics=metrics,
            handler=OmahaHandler(settings, storage, catalog, registry, metrics),
            publisher=publisher,
            feed=FeedHub(
                storage, metrics, settings.max_feed_clients, stopping, settings.max_feed_clients_per_address
            ),
            token=load_or_create_token(settings),
            stopping=stopping,
            client_address=lambda request: client_ip(request, settings.trusted_proxies),
        )
        app.state.core = state
        if settings.freeze_gc:
            gc.collect()
            gc.freeze()
        pruner = asyncio.create_task(Retention(settings, storage, registry, metrics).run_forever(stopping))
        fan_out = asyncio.create_task(state.feed.run())
        tasks = [pruner, fan_out]
        if settings.sync_url is not None:
            state.syncer = Syncer(settings, storage, catalog, publisher, stopping)
            tasks.append(asyncio.create_task(state.syncer.run()))
        try:
            yield
        finally:
            state.stopping.set()
            state.feed.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await storage.close()

    app = FastAPI(
        title="coreroll update server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    redirect_real_slashes(app.router)
    if settings.public_url is not None or settings.trusted_proxies:
        app.add_middleware(PublicOrigin, public_url=settings.public_url, trusted=settings.trusted_proxies)
    app.add_route("/v1/update/", omaha_endpoint, methods=["POST"])
    app.add_route("/v1/update", omaha_endpoint, methods=["POST"])
    app.add_route("/v1/update/{secret}/", omaha_endpoint, methods=["POST"])
    app.add_route("/v1/update/{secret}", omaha_endpoint, methods=["POST"])
    if settings.fixed_response_route:
        app.add_route("/bench/fixed", fixed_endpoint, methods=["POST"])
    app.add_route("/packages/{path:path}", packages_endpoint, methods=["GET", "HEAD"])
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/metrics", metrics_endpoint, methods=["GET"])
    app.include_router(api_read.router)
    app.include_router(api_admin.router)

    @app.exception_handler(CatalogError)
    async def catalog_error(_request: Request, exc: CatalogError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(api_admin.Unauthorized)
    async def unauthorized(_request: Request, exc: api_admin.Unauthorized) -> JSONResponse:
        return api_admin.unauthorized_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
        # The client left mid-body (or the connection guard dropped it): nobody reads a reply,
        # and it is no server error to log.
        return Response(status_code=499)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

    return app
