"""Helpers for the server tests: Omaha requests as update_engine sends them, XML reading, admin calls."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from lxml import etree

from coreroll.omaha.protocol import OmahaEvent, build_request
from tests.omaha.crau_builder import build_crau, image_bytes

# One client for every helper: creating an httpx.Client builds an SSL context (~0.1 s on a busy machine).
HTTP = httpx.Client(timeout=15)

# Section 1.2 of the reference, byte for byte apart from the line breaks inside <request>.
REFERENCE_REQUEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
    <os version="Chateau" platform="CoreOS" sp="3975.2.1_x86_64"></os>
    <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3975.2.1" track="stable" bootid="{3c9c0e11-...}" oem="ami" oemversion="..." alephversion="3510.2.0" machineid="9ce7a919806c4f3785eb6d260345ac4a" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false" >
        <ping active="1"></ping>
        <updatecheck></updatecheck>
        <event eventtype="3" eventresult="2" previousversion=""></event>
    </app>
</request>
"""


def request_xml(
    machineid: str,
    version: str,
    track: str = "stable",
    *,
    updatecheck: bool = True,
    ping: bool = True,
    events: list[OmahaEvent] | None = None,
    previous: str | None = "",
    agent: bool = True,
) -> bytes:
    """What coreroll's agent sends (update_engine's request plus ``coreroll_agent="1"``; ``agent=False``:
    update_engine's own bytes): a check carries a 3/2 event with ``previous`` (None: no 3/2)."""
    if events is None:
        events = [] if previous is None or not updatecheck else [OmahaEvent(3, 2, None, previous)]
    return build_request(
        version=version, track=track, machineid=machineid, bootid="{b0071d00-0000-4000-8000-000000000000}",
        oem="ami", oemversion="0.1", alephversion="3510.2.0", board="amd64-usr", installsource="scheduler",
        ping=ping, updatecheck=updatecheck, events=events, coreroll_agent=agent,
    )  # fmt: skip


def event_xml(machineid: str, version: str, etype: int, result: int, errorcode: int | None = None,
              track: str = "stable") -> bytes:  # fmt: skip
    return request_xml(machineid, version, track, updatecheck=False, ping=False,
                       events=[OmahaEvent(etype, result, errorcode, None)])  # fmt: skip


def post(url: str, body: bytes) -> httpx.Response:
    return HTTP.post(f"{url}/v1/update/", content=body, headers={"Content-Type": "text/xml"})


def omaha(url: str, body: bytes) -> etree._Element:
    reply = post(url, body)
    assert reply.status_code == 200, reply.text
    return etree.fromstring(reply.content)


def check_status(root: etree._Element) -> str:
    return root.find("app/updatecheck").get("status")


def auth(server: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def get(server: Any, path: str, **params: Any) -> Any:
    reply = HTTP.get(f"{server.url}{path}", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def call(
    server: Any, method: str, path: str, body: Any = None, token: str | None = "server"
) -> httpx.Response:
    """An admin call; ``token="server"`` uses the server's token, None sends none."""
    headers = (
        {} if token is None else {"Authorization": f"Bearer {server.token if token == 'server' else token}"}
    )
    return HTTP.request(method, f"{server.url}{path}", json=body, headers=headers)


def publish(server: Any, version: str, channel: str = "stable") -> dict[str, Any]:
    reply = call(server, "POST", "/api/v1/releases",
                 {"version": version, "synthetic": True, "channel": channel, "image_size": 4096})  # fmt: skip
    assert reply.status_code == 201, reply.text
    return reply.json()


def real_payload(tag: str, size: int = 3000) -> bytes:
    """A real update_engine payload (CrAU version 1, manifest, operations, signed by the fleet's test key)
    of a ``size``-byte image that differs per ``tag``."""
    return build_crau(image_bytes(tag, size))


def upload(server: Any, version: str, data: bytes, **params: str) -> httpx.Response:
    """``POST /api/v1/releases`` with ``data`` as the body; ``params`` as query parameters."""
    return HTTP.post(
        f"{server.url}/api/v1/releases",
        params={"version": version, **params},
        content=data,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"},
    )


def publish_real(
    server: Any, version: str, channel: str = "stable", board: str = "amd64-usr"
) -> dict[str, Any]:
    """Publish an update_engine-shaped payload (offered to update_engine too) named as Flatcar names it."""
    reply = upload(server, version, real_payload(f"{version} {board} "), channel=channel, board=board,
                   filename="flatcar_production_update.gz")  # fmt: skip
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def instance(server: Any, machine_id: str) -> dict[str, Any]:
    return get(server, f"/api/v1/instances/{machine_id}")


def activity_kinds(server: Any) -> list[str]:
    return [a["kind"] for a in get(server, "/api/v1/activity")["activity"]]


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def read_feed(
    url: str,
    last_id: int | None = None,
    until: Callable[[list[dict[str, Any]]], bool] = lambda events: False,
    timeout: float = 10.0,
    sink: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Read ``/api/v1/feed`` (from ``Last-Event-ID: last_id``) until ``until(events)`` is true.

    Each event is ``{"event", "id" (int), "data" (parsed JSON)}``. A dropped connection ends the read
    quietly (the kill -9 test relies on that); a silent feed raises ``httpx.ReadTimeout`` after ``timeout``.
    Events are appended to ``sink`` as they arrive when one is given (readers in threads).
    """
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    events: list[dict[str, Any]] = [] if sink is None else sink
    current: dict[str, str] = {}
    try:
        with httpx.stream("GET", f"{url}/api/v1/feed", headers=headers, timeout=timeout) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            for line in reply.iter_lines():
                if line.startswith(":"):
                    continue
                if line == "":
                    if "data" in current:
                        events.append(
                            {
                                "event": current.get("event"),
                                "id": int(current["id"]) if "id" in current else None,
                                "data": json.loads(current["data"]),
                            }
                        )
                        if until(events):
                            return events
                    current = {}
                    continue
                name, _, value = line.partition(":")
                current[name] = value[1:] if value.startswith(" ") else value
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError):
        pass
    return events


def metric(server: Any, name: str) -> float:
    """One sample of the server's /metrics, by its full name with labels (0 before the first)."""
    text = HTTP.get(f"{server.url}/metrics").text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
