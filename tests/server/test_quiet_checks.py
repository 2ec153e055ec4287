"""The remembered answer of a quiet re-check (omaha_handler's quiet memo) is never stale: the very
same request bytes, checked again after the catalog or the machine's row moved, are decided anew."""

from __future__ import annotations

import pytest

from coreroll.server.runner import RunningServer
from tests.server.helpers import call, check_status, instance, metric, omaha, publish, request_xml

pytestmark = pytest.mark.slow

MACHINE = "5f0c7a9e0c1d4e7b9a3b2c1d0e0f0a1b"


def test_a_newer_release_reaches_a_machine_whose_check_was_remembered(sqlite_server: RunningServer) -> None:
    publish(sqlite_server, "4000.0.0", "stable")
    check = request_xml(MACHINE, "4000.0.0")
    assert [check_status(omaha(sqlite_server.url, check)) for _ in range(3)] == ["noupdate"] * 3
    publish(sqlite_server, "4001.0.0", "stable")
    root = omaha(sqlite_server.url, check)
    assert check_status(root) == "ok"
    assert root.find("app/updatecheck/manifest").get("version") == "4001.0.0"


def test_a_payload_for_its_board_reaches_a_machine_held_without_one(sqlite_server: RunningServer) -> None:
    publish(sqlite_server, "4001.0.0", "stable")  # amd64-usr only
    check = request_xml(MACHINE, "4000.0.0").replace(b'board="amd64-usr"', b'board="arm64-usr"')
    assert [check_status(omaha(sqlite_server.url, check)) for _ in range(3)] == ["noupdate"] * 3
    assert instance(sqlite_server, MACHINE)["status"] == "OnHold"
    # Remembered answers are counted as the first one was: every check held for want of a payload.
    counted = [
        metric(sqlite_server, f'coreroll_omaha_requests_total{{result="{r}"}}')
        for r in ("no_payload", "onhold")
    ]
    assert counted == [3, 3]
    reply = call(sqlite_server, "POST", "/api/v1/releases",
                 {"version": "4001.0.0", "synthetic": True, "board": "arm64-usr", "image_size": 4096})  # fmt: skip
    assert reply.status_code == 201, reply.text
    root = omaha(sqlite_server.url, check)
    assert check_status(root) == "ok"
    assert root.find("app/updatecheck/urls/url").get("codebase").endswith("/4001.0.0/arm64-usr/")
