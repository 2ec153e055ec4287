"""Helpers for the watch tests: node status documents, and waiting on the model with a deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from coreroll.omaha.protocol import build_request
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from coreroll.wire.status import sample_document


def status_doc(machine_id: str, **overrides: Any) -> dict[str, Any]:
    """A node status report as the agent writes it: the wire table's samples, then `overrides` by
    field name (`progress=0.5` sets update.progress)."""
    return sample_document(machine_id, **overrides)


def status_bytes(machine_id: str, **overrides: Any) -> bytes:
    return json.dumps(status_doc(machine_id, **overrides)).encode()


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def wait_model(
    model: FleetModel,
    buffer: UpdateBuffer,
    predicate: Callable[[FleetModel], bool],
    deadline: float = 10.0,
    what: str = "condition",
) -> float:
    """Apply what the sources delivered every few ms until `predicate(model)`; returns seconds waited."""
    start = time.monotonic()
    while True:
        model.apply_many(buffer.drain())
        if predicate(model):
            return time.monotonic() - start
        if time.monotonic() - start > deadline:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}; model has {model.rows!r}")
        await asyncio.sleep(0.01)


# --- talking to a real update server (sync httpx: the server runs in its own thread) -------------


def check_in(server_url: str, machine_id: str, version: str = "4600.0.0", track: str = "beta") -> None:
    """An update check as coreroll's agent sends it (so synthetic releases are offered to it)."""
    body = build_request(
        version=version, track=track, machineid=machine_id, bootid="{b0071d00-0000-4000-8000-000000000000}",
        oem="ami", oemversion="0.1", alephversion="3510.2.0", board="amd64-usr", installsource="scheduler",
        ping=True, updatecheck=True, events=[], coreroll_agent=True,
    )  # fmt: skip
    reply = httpx.post(
        f"{server_url}/v1/update/", content=body, headers={"Content-Type": "text/xml"}, timeout=10
    )
    assert reply.status_code == 200, reply.text


def admin_call(server: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.request(method, f"{server.url}{path}", json=body, headers=headers, timeout=30)


def publish(server: Any, version: str, channel: str) -> None:
    body = {"version": version, "synthetic": True, "channel": channel, "image_size": 4096}
    reply = admin_call(server, "POST", "/api/v1/releases", body)
    assert reply.status_code == 201, reply.text
