"""Build and run the dashboard from command-line arguments (`coreroll dash`, `python -m tui`).

`build_app(args, app_class=DashApp) -> DashApp` wires FleetModel + UpdateBuffer + EtcdSource/FeedSource + Actions from
the flags `coreroll.commands.dash.add_arguments` defines; `run_dashboard(args) -> int` runs it;
`main(argv)` parses arguments first (for `python -m tui`). Configuration problems are reported in
one line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from coreroll.commands.dash import add_arguments
from coreroll.commands.lock import api_origin, resolve
from coreroll.etcd.config import EtcdConfig
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from tui.app import DashApp
from tui.keymap_config import LoadedKeymap, keymap_file, load_keymap


def _token(args: argparse.Namespace) -> str | None:
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


def history_loader(server: str, timeout: float = 5.0) -> Any:
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


def build_app(args: argparse.Namespace, app_class: type[DashApp] = DashApp) -> DashApp:
    """The dashboard the flags describe (`app_class`: a DashApp subclass, e.g. a browser session's)."""
    config, _, _, etcd_explicit = resolve(args)
    server = args.server or os.environ.get("COREROLL_SERVER") or None
    use_etcd = etcd_explicit or server is None
    buffer = UpdateBuffer()
    sources: list[Any] = []
    configured: list[str] = []
    if use_etcd:
        sources.append(EtcdSource(config, buffer.put, airlock=args.airlock, api_origin=api_origin(args)))
        configured.append("etcd")
    token = None if args.read_only else _token(args)  # watching needs no token: never load it
    if server:
        sources.append(FeedSource(server, buffer.put, token=token))  # with the token: always a feed slot
        configured.append("server")
    actions = make_actions(config if use_etcd else None, server, token, args.read_only)
    cluster = ",".join(config.endpoints) if use_etcd else (server or "")
    return app_class(
        FleetModel(stale_offline_grace=args.stale_offline_grace),
        buffer=buffer,
        sources=sources,
        actions=actions,
        read_only=args.read_only,
        cluster=cluster,
        refresh_interval=max(args.refresh, 0.05),
        history=history_loader(server) if server else None,
        sources_configured=configured,
        keymap=user_keymap(args, app_class),
        theme=args.theme,
    )


def user_keymap(args: argparse.Namespace, app_class: type[DashApp] = DashApp) -> LoadedKeymap:
    """The key map of --keymap FILE (else keys.toml) and COREROLL_KEYMAP, checked (KeymapError)."""
    keymap_path, named = keymap_file(args.keymap)
    return load_keymap(app_class, file=keymap_path, file_wins=named)


def check_keys_and_theme(args: argparse.Namespace) -> None:
    """Refuse (ValueError) what build_app would of the key map and --theme, building nothing else:
    `--serve` checks once here instead of failing in every browser tab."""
    DashApp(watch_tty=False, keymap=user_keymap(args), theme=args.theme)


def report(exc: Exception) -> None:
    """A configuration problem on stderr, each line of it (a key map lists several) prefixed."""
    print(f"coreroll dash: {exc}".replace("\n", "\ncoreroll dash: "), file=sys.stderr)


def make_actions(config: EtcdConfig | None, server: str | None, token: str | None, read_only: bool) -> Any:
    try:
        from coreroll.watch.actions import Actions
    except ImportError:  # the action layer is not there: the dashboard still watches
        return None
    return Actions(config, server, token, read_only)


def run_dashboard(args: argparse.Namespace) -> int:
    try:
        app = build_app(args)
    except (ValueError, OSError) as exc:  # a key map error lists every problem, one a line
        report(exc)
        return 1
    result = app.run(mouse=bool(args.mouse))
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui", description="the coreroll dashboard")
    add_arguments(parser)
    from coreroll.commands.dash import run

    return run(parser.parse_args(argv))
