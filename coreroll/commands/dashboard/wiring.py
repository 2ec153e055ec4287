"""The dashboard's composition root: `coreroll dash`'s flags -> a `DashboardSetup` for the UI.

    setup = dashboard_setup(args)        # model, buffer, sources, action layer, history loader
    app = ui_module("run").build_app(setup)

Everything that reads configuration lives here, not in `tui`: the etcd endpoints and TLS/auth
flags (resolved exactly as `coreroll lock` does), the update server (`--server` /
COREROLL_SERVER), the admin token (`--token` / COREROLL_TOKEN, else the token file the server
wrote) and the lock API. With neither --etcd nor --server the dashboard uses locksmithctl's
default etcd endpoints. A read-only dashboard never loads the token.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from coreroll.commands.lock import api_origin, resolve
from coreroll.etcd.config import EtcdConfig
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.setup import DashboardSetup, HistoryLoader, Source
from coreroll.watch.updates import UpdateBuffer


def admin_token(args: argparse.Namespace) -> str | None:
    """--token, else COREROLL_TOKEN, else the update server's token file; None when none is found."""
    if args.token:
        return str(args.token)
    if os.environ.get("COREROLL_TOKEN"):
        return os.environ["COREROLL_TOKEN"]
    try:
        from coreroll.server.settings import default_data_dir

        path = default_data_dir() / "token"
        return path.read_text().strip() or None if path.exists() else None
    except (ImportError, OSError):
        return None


def history_loader(server: str, timeout: float = 5.0) -> HistoryLoader:
    """An async callable: machine id -> the server's history entries (newest first)."""

    async def load(machine_id: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=server, timeout=timeout) as http:
            reply = await http.get(f"/api/v1/instances/{machine_id}/history", params={"limit": 50})
            if reply.status_code == 404:
                return []
            reply.raise_for_status()
            entries = reply.json().get("history", [])
            return entries if isinstance(entries, list) else []

    return load


def make_actions(
    config: EtcdConfig | None, server: str | None, token: str | None, read_only: bool, by: str | None = None
) -> Any:
    try:
        from coreroll.watch.actions import Actions
    except ImportError:  # the action layer is not there: the dashboard still watches
        return None
    return Actions(config, server, token, read_only, by=by)


def dashboard_setup(args: argparse.Namespace, *, admin_by: str | None = None) -> DashboardSetup:
    """What the flags describe. `admin_by` (a served browser session): the setup can hand out a
    writing action layer for the admin token, its audit records signed `admin_by`."""
    config, _, _, etcd_explicit = resolve(args)
    server = args.server or os.environ.get("COREROLL_SERVER") or None
    use_etcd = etcd_explicit or server is None
    etcd = config if use_etcd else None
    buffer = UpdateBuffer()
    sources: list[Source] = []
    configured: list[str] = []
    if use_etcd:
        sources.append(EtcdSource(config, buffer.put, airlock=args.airlock, api_origin=api_origin(args)))
        configured.append("etcd")
    token = None if args.read_only else admin_token(args)  # watching needs no token: never load it
    if server:
        sources.append(FeedSource(server, buffer.put, token=token))  # with the token: always a feed slot
        configured.append("server")
    return DashboardSetup(
        FleetModel(stale_offline_grace=args.stale_offline_grace),
        buffer,
        sources,
        actions=make_actions(etcd, server, token, args.read_only),
        cluster=",".join(config.endpoints) if use_etcd else (server or ""),
        read_only=args.read_only,
        refresh_interval=max(args.refresh, 0.05),
        history=history_loader(server) if server else None,
        sources_configured=configured,
        keymap_path=args.keymap,
        theme=args.theme,
        mouse=bool(getattr(args, "mouse", False)),
        admin_actions=None
        if admin_by is None
        else lambda given: make_actions(etcd, server, given, False, by=admin_by),
    )
