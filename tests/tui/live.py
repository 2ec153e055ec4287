"""Live fixtures for the dashboard tests: etcd writes, a real update server, a TCP cut-off proxy,
and a DashApp wired to real sources and the real action layer."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from coreroll.commands.dashboard.wiring import history_loader
from coreroll.etcd.config import EtcdConfig
from coreroll.omaha.client import build_request
from coreroll.watch.actions import Actions
from coreroll.watch.backoff import Backoff
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from coreroll.wire.keys import alive_key, command_prefix
from tests.tui.helpers import wait_for
from tui.app import DashApp
from tui.sample import STATUS_KEY, status_json
from widgets.dialogs import ChoiceDialog, ConfirmDialog


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


class Etcd:
    """Blocking etcd v3 writes through the JSON gateway (for test setup)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def put(self, key: str, value: bytes | str, lease: int | None = None) -> None:
        body: dict[str, object] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = lease
        httpx.post(f"{self.endpoint}/v3/kv/put", json=body, timeout=5).raise_for_status()

    def delete(self, key: str) -> None:
        httpx.post(
            f"{self.endpoint}/v3/kv/deleterange", json={"key": _b64(key)}, timeout=5
        ).raise_for_status()

    def get(self, key: str) -> bytes | None:
        reply = httpx.post(f"{self.endpoint}/v3/kv/range", json={"key": _b64(key)}, timeout=5).json()
        kvs = reply.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def prefix(self, prefix: str) -> dict[str, bytes]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = httpx.post(
            f"{self.endpoint}/v3/kv/range", json={"key": _b64(prefix), "range_end": _b64(end)}, timeout=5
        ).json()
        return {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"])
            for kv in reply.get("kvs") or []
        }

    def lease(self, ttl: int = 60) -> int:
        reply = httpx.post(f"{self.endpoint}/v3/lease/grant", json={"TTL": ttl}, timeout=5).json()
        return int(reply["ID"])

    def node(self, mid: str, alive: bool = True, **fields: object) -> None:
        self.put(STATUS_KEY.format(mid), status_json(mid, **fields))
        if alive:
            self.put(alive_key(mid), "1", lease=self.lease())


def register_instance(server_url: str, mid: str, track: str = "stable", version: str = "4081.2.1") -> None:
    """An Omaha update check from `mid`, so the server knows it (and puts it in `track`'s group)."""
    body = build_request(
        version=version, track=track, machineid=mid, bootid="{" + mid[:8] + "-boot}", oem="",
        oemversion="", alephversion=version, board="amd64-usr",
    )  # fmt: skip
    httpx.post(f"{server_url}/v1/update/", content=body, timeout=5).raise_for_status()


def make_live_app(
    etcd_endpoint: str | None,
    server_url: str | None,
    token: str | None = None,
    read_only: bool = False,
) -> DashApp:
    buffer = UpdateBuffer()
    sources: list[object] = []
    configured = []
    config = EtcdConfig(endpoints=(etcd_endpoint,)) if etcd_endpoint else None
    if config is not None:
        sources.append(EtcdSource(config, buffer.put, probe_interval=0.5, backoff=Backoff(0.1, 0.5)))
        configured.append("etcd")
    if server_url:
        sources.append(FeedSource(server_url, buffer.put, probe_interval=0.5, backoff=Backoff(0.1, 0.5)))
        configured.append("server")
    return DashApp(
        FleetModel(),
        buffer=buffer,
        sources=sources,  # type: ignore[arg-type]
        actions=Actions(config, server_url, token, read_only),
        read_only=read_only,
        cluster=etcd_endpoint or server_url or "",
        refresh_interval=0.1,
        history=history_loader(server_url) if server_url else None,
        watch_tty=False,
        sources_configured=configured,
    )


class CutProxy:
    """A TCP proxy on 127.0.0.1 that can be cut (every connection dropped, new ones refused) and
    restored on the same port: a network partition between the dashboard and one source."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._stop())

    def restore(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def server_running(data_dir: Path) -> Iterator[tuple[str, str]]:
    from coreroll.server.runner import run_server_in_thread
    from coreroll.server.settings import ServerSettings

    with run_server_in_thread(ServerSettings(data_dir=data_dir)) as server:
        yield server.url, server.token


def server_groups(url: str) -> dict[str, dict[str, object]]:
    reply = httpx.get(f"{url}/api/v1/groups", timeout=5).json()
    return {g["id"]: g for g in reply["groups"]}


def admin_post(url: str, token: str, path: str) -> None:
    httpx.post(f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5).raise_for_status()


def commands_for(etcd: Etcd, mid: str) -> list[dict[str, object]]:
    return [json.loads(v) for v in etcd.prefix(command_prefix(mid)).values()]


async def pick_channel(app: DashApp, pilot: Any, name: str) -> None:
    """Press `s` and choose `name` in the channel picker; returns with the confirmation open."""
    await pilot.press("s")
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), 5, "channel picker")
    names = [c.name for c in app.model.channels()]
    for _ in range(names.index(name)):
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
