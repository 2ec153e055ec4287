"""``ServerState``: the parts of one running server, reachable from a request as
``request.app.state.core`` (``core(request)``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from coreroll.server.catalog import Catalog
from coreroll.server.feed import FeedHub
from coreroll.server.metrics import Metrics
from coreroll.server.omaha_handler import OmahaHandler
from coreroll.server.registry import Registry
from coreroll.server.releases import Publisher
from coreroll.server.settings import ServerSettings
from coreroll.server.storage import Storage
from coreroll.server.sync import Syncer


@dataclass
class ServerState:
    settings: ServerSettings
    storage: Storage
    catalog: Catalog
    registry: Registry
    metrics: Metrics
    handler: OmahaHandler
    publisher: Publisher
    feed: FeedHub
    token: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # The client's address as this server believes it (--trusted-proxy applied): app.client_ip
    client_address: Callable[[Request], str] = lambda request: request.client.host if request.client else ""
    syncer: Syncer | None = None  # with --sync


def core(request: Request) -> ServerState:
    return request.app.state.core


def base_url(request: Request) -> str:
    state = core(request)
    return (state.settings.public_url or str(request.base_url)).rstrip("/")
