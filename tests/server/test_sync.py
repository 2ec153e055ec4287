"""`coreroll server --sync`: a server follows a fixture upstream (tests/server/upstream_fixture.py).

URL mode (nodes download from upstream's URLs) and hosted mode (``--host-packages``: each file
mirrored, checked whole with ``--payload-key``, renamed into place only when whole); floors and
extras on two boards; pins; a download cut mid-way, a corrupt payload, a restart.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from coreroll.omaha.client import parse_response
from coreroll.omaha.protocol import OmahaEvent, build_request
from coreroll.server.runner import RunningServer
from tests.omaha.crau_builder import fleet_key, public_pem
from tests.server.conftest import start
from tests.server.helpers import HTTP, activity_kinds, call, get, post, read_feed, wait_until
from tests.server.upstream_fixture import PAYLOAD_NAME, FixtureUpstream, UpstreamRelease

pytestmark = pytest.mark.slow  # each test starts a server or two and an upstream

BOARDS = ("amd64-usr", "arm64-usr")


def flatcar_upstream() -> FixtureUpstream:
    """stable: a floor 3700.0.0 (amd64 only) below 3732.0.0 with two extras; beta: 3760.1.0."""
    return FixtureUpstream(
        {
            ("stable", "amd64-usr"): [
                UpstreamRelease("3600.0.0"),
                UpstreamRelease("3700.0.0", floor=True, floor_reason="cgroups v2 migration"),
                UpstreamRelease("3732.0.0", extras=("oem-azure.gz", "oem-qemu.gz")),
            ],
            ("stable", "arm64-usr"): [UpstreamRelease("3732.0.0", extras=("oem-qemu.gz",))],
            ("beta", "amd64-usr"): [UpstreamRelease("3760.1.0")],
            ("beta", "arm64-usr"): [UpstreamRelease("3760.1.0")],
        }
    )


@pytest.fixture
def upstream() -> Iterator[FixtureUpstream]:
    running = flatcar_upstream()
    yield running
    running.stop()


def sync_server(
    tmp_path: Path,
    db: str,
    upstream: FixtureUpstream,
    channels: tuple[str, ...] = ("beta", "stable"),
    **extra: Any,
) -> RunningServer:
    return start(tmp_path, db, sync_url=f"{upstream.url}/v1/update/", sync_channels=channels, **extra)


def sync_pass(server: RunningServer) -> dict[str, Any]:
    reply = call(server, "POST", "/api/v1/sync?wait=60")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def node_check(server: RunningServer, version: str, board: str, channel: str = "stable") -> etree._Element:
    """update_engine's own request (no coreroll_agent) from a node at ``version`` on ``board``."""
    body = build_request(
        version=version, track=channel, machineid=hashlib.md5(f"{board}{version}".encode()).hexdigest(),
        bootid="{b0071d00-0000-4000-8000-000000000000}", oem="ami", oemversion="0.1", alephversion=version,
        board=board, installsource="scheduler", events=[OmahaEvent(3, 2, None, "")],
    )  # fmt: skip
    reply = post(server.url, body)
    assert reply.status_code == 200, reply.text
    return etree.fromstring(reply.content)


def offered(root: etree._Element) -> tuple[str, str, dict[str, str]]:
    """(version, payload URL, {extra name: hex sha256}) of an ``ok`` answer, read as update_engine reads it."""
    info = parse_response(etree.tostring(root))
    assert info.status == "ok" and info.offer is not None, etree.tostring(root)
    extras = {
        p.get("name"): p.get("hash_sha256") for p in root.iter("package") if p.get("required") == "false"
    }
    return info.offer.version, info.payload_urls[0], extras


def test_url_mode_offers_upstream_releases_on_every_channel_and_board(
    tmp_path: Path, sqlite_url: str, upstream: FixtureUpstream
) -> None:
    server = sync_server(tmp_path, sqlite_url, upstream)
    try:
        report = sync_pass(server)
        # What upstream saw: a syncer's update_engine-shaped request per channel and board
        seen = {
            (a.get("track"), a.get("board"))
            for a in (etree.fromstring(r).find("app") for r in upstream.requests)
        }
        assert seen == {(c, b) for c in ("beta", "stable") for b in BOARDS}
        first = etree.fromstring(upstream.requests[0])
        assert (
            first.get("installsource") == "scheduler" and first.get("version") == "CoreOSUpdateEngine-0.1.0.0"
        )
        assert (
            first.find("app").get("multi_manifest_ok") == "true" and first.find("app/updatecheck") is not None
        )
        channels = {c["name"]: c["version"] for c in get(server, "/api/v1/channels")["channels"]}
        assert channels["stable"] == "3732.0.0" and channels["beta"] == "3760.1.0"
        rows = {(r["channel"], r["board"]): r for r in report["channels"]}
        assert all(rows[(c, b)]["last_success_at"] and rows[(c, b)]["last_error"] is None
                   for c in ("beta", "stable") for b in BOARDS), rows  # fmt: skip
        assert rows[("stable", "amd64-usr")]["upstream_version"] == "3732.0.0" and report["mode"] == "url"
        # A node below the floor gets the floor first, from upstream's directory of that release
        version, url, _ = offered(node_check(server, "3600.0.0", "amd64-usr"))
        assert (version, url) == ("3700.0.0", f"{upstream.url}/amd64-usr/3700.0.0/{PAYLOAD_NAME}")
        version, url, extras = offered(node_check(server, "3700.0.0", "amd64-usr"))
        assert (version, url) == ("3732.0.0", f"{upstream.url}/amd64-usr/3732.0.0/{PAYLOAD_NAME}")
        assert extras == {n: hashlib.sha256(upstream.files[f"amd64-usr/3732.0.0/{n}"]).hexdigest()
                          for n in ("oem-azure.gz", "oem-qemu.gz")}  # fmt: skip
        version, url, extras = offered(node_check(server, "3600.0.0", "arm64-usr"))
        assert (version, url) == ("3732.0.0", f"{upstream.url}/arm64-usr/3732.0.0/{PAYLOAD_NAME}")
        assert list(extras) == ["oem-qemu.gz"]
        version, url, _ = offered(node_check(server, "3700.0.0", "arm64-usr", "beta"))
        assert (version, url) == ("3760.1.0", f"{upstream.url}/arm64-usr/3760.1.0/{PAYLOAD_NAME}")
        # The offered bytes are upstream's (what update_engine checks: size, base64 SHA-256)
        info = parse_response(etree.tostring(node_check(server, "3700.0.0", "amd64-usr")))
        data = upstream.files[f"amd64-usr/3732.0.0/{PAYLOAD_NAME}"]
        assert info.offer is not None and info.offer.size == len(data)
        floor = next(r for r in get(server, "/api/v1/releases")["releases"] if r["version"] == "3700.0.0")
        assert floor["floor"] is True and floor["payloads"][0]["hosted"] is False
        kinds = activity_kinds(server)
        assert kinds.count("ReleaseSynced") == 5 and "SyncFailed" not in kinds  # 3700, 3732 x2, 3760.1 x2
        assert upstream.downloads == []  # URL mode: nothing was fetched whole
        # A second pass asks again and records nothing twice
        sync_pass(server)
        assert activity_kinds(server).count("ReleaseSynced") == 5
    finally:
        server.stop()


def test_hosted_mode_mirrors_checked_files_and_a_cut_download_leaves_nothing(
    tmp_path: Path, sqlite_url: str, upstream: FixtureUpstream
) -> None:
    key = tmp_path / "update-payload-key.pub.pem"
    key.write_bytes(public_pem(fleet_key()))
    upstream.channels = {("stable", "amd64-usr"): upstream.channels[("stable", "amd64-usr")][2:]}  # 3732 only
    upstream.pause_at["oem-azure.gz"] = 1000
    packages = tmp_path / "data" / "packages"
    server = sync_server(tmp_path, sqlite_url, upstream, host_packages=True, payload_key=key,
                         sync_boards=("amd64-usr",), channels=("stable",))  # fmt: skip
    try:
        # Mid-download (the payload is stored, an extra is on its way): 3732.0.0 is not offered
        assert upstream.paused.wait(30), "the sync never started downloading oem-azure.gz"
        assert offered_or_none(server) is None
        assert {c["name"]: c["version"] for c in get(server, "/api/v1/channels")["channels"]}[
            "stable"
        ] is None
        # Upstream dies mid-download
        upstream.die_at["oem-azure.gz"] = 500
        upstream.resume.set()
        report = wait_until(lambda: failed_row(server), 30, "the cut download to be reported")
        assert "oem-azure.gz" in report["last_error"] and "nothing was kept" in report["last_error"]
        assert [p.name for p in packages.rglob("*") if p.is_file() and ".upload-" in p.name] == []
        assert offered_or_none(server) is None
        assert "SyncFailed" in activity_kinds(server)
        # Upstream back: the next pass stores all three files whole, checked, and serves them itself
        del upstream.die_at["oem-azure.gz"], upstream.pause_at["oem-azure.gz"]
        report = sync_pass(server)
        assert report["channels"][0]["last_error"] is None, report
        version, url, extras = offered(node_check(server, "3600.0.0", "amd64-usr"))
        assert version == "3732.0.0" and url.startswith(f"{server.url}/packages/")
        assert set(extras) == {"oem-azure.gz", "oem-qemu.gz"}
        for name in (PAYLOAD_NAME, *extras):
            got = HTTP.get(url.rpartition("/")[0] + "/" + name)
            assert got.content == upstream.files[f"amd64-usr/3732.0.0/{name}"]
        before = len(upstream.downloads)
    finally:
        server.stop()
    # A restart resumes where it was: no download again, nothing recorded twice
    server = sync_server(tmp_path, sqlite_url, upstream, host_packages=True, payload_key=key,
                         sync_boards=("amd64-usr",), channels=("stable",))  # fmt: skip
    try:
        sync_pass(server)
        assert len(upstream.downloads) == before
        assert activity_kinds(server).count("ReleaseSynced") == 1
        assert len(get(server, "/api/v1/releases")["releases"][0]["extras"]) == 2
    finally:
        server.stop()


def offered_if_any(server: RunningServer, version: str, board: str) -> tuple[str, str, dict[str, str]] | None:
    root = node_check(server, version, board)
    return None if root.find("app/updatecheck").get("status") == "noupdate" else offered(root)


def offered_or_none(server: RunningServer) -> str | None:
    status = node_check(server, "3600.0.0", "amd64-usr").find("app/updatecheck").get("status")
    return None if status == "noupdate" else status


def failed_row(server: RunningServer) -> dict[str, Any] | None:
    return next((r for r in get(server, "/api/v1/sync")["channels"] if r["last_error"]), None)


def test_a_corrupt_upstream_payload_is_refused_and_reported(
    tmp_path: Path, sqlite_url: str, upstream: FixtureUpstream
) -> None:
    upstream.corrupt.add(PAYLOAD_NAME)
    server = sync_server(tmp_path, sqlite_url, upstream, host_packages=True, sync_boards=("arm64-usr",))
    try:
        report = sync_pass(server)
        assert {(r["version"], r["board"]) for r in report["refused"]} == {("3732.0.0", "arm64-usr"),
                                                                          ("3760.1.0", "arm64-usr")}  # fmt: skip
        reason = report["refused"][0]["reason"]
        assert PAYLOAD_NAME in reason and "refused" in reason, reason
        assert get(server, "/api/v1/releases")["releases"] == []
        assert {c["name"]: c["version"] for c in get(server, "/api/v1/channels")["channels"]}[
            "stable"
        ] is None
        assert "SyncFailed" in activity_kinds(server)
        assert [p for p in (tmp_path / "data" / "packages").rglob("*") if p.is_file()] == []
        # Upstream fixes its file: the next pass stores it and the refusal is gone
        upstream.corrupt.clear()
        report = sync_pass(server)
        assert report["refused"] == [] and all(r["last_error"] is None for r in report["channels"])
    finally:
        server.stop()


def test_a_pinned_channel_stays_while_the_sync_records_and_unpin_follows_again(
    tmp_path: Path, sqlite_url: str, upstream: FixtureUpstream
) -> None:
    later = UpstreamRelease("3760.0.0")
    server = sync_server(tmp_path, sqlite_url, upstream, sync_boards=("amd64-usr",))
    try:
        sync_pass(server)
        last = get(server, "/api/v1/activity")["activity"][0]["id"]
        reply = call(server, "PUT", "/api/v1/channels/stable/pin", {"version": "3700.0.0"})
        assert reply.status_code == 200 and reply.json()["pinned"] == "3700.0.0", reply.text
        # Manual moves of a pinned channel are refused with the way out
        refused = call(server, "PUT", "/api/v1/channels/stable", {"version": "3732.0.0"})
        assert refused.status_code == 409 and "unpin" in refused.json()["error"], refused.text
        # Upstream moves on: the release is recorded, the channel stays
        upstream.channels[("stable", "amd64-usr")].append(later)
        upstream.files[f"amd64-usr/3760.0.0/{PAYLOAD_NAME}"] = upstream.files[
            f"amd64-usr/3760.1.0/{PAYLOAD_NAME}"
        ]
        report = sync_pass(server)
        assert report["pins"] == {"stable": "3700.0.0"}
        assert "3760.0.0" in {r["version"] for r in get(server, "/api/v1/releases")["releases"]}
        assert {c["name"]: c["version"] for c in get(server, "/api/v1/channels")["channels"]}[
            "stable"
        ] == "3700.0.0"
        # Unpin: the next pass follows upstream; the feed carried the pin changes
        assert call(server, "DELETE", "/api/v1/channels/stable/pin").status_code == 200
        sync_pass(server)
        assert {c["name"]: c["version"] for c in get(server, "/api/v1/channels")["channels"]}[
            "stable"
        ] == "3760.0.0"
        kinds = [e["data"].get("kind") for e in read_feed(server.url, last, until=lambda ev: any(
            e["data"].get("kind") == "ChannelUnpinned" for e in ev)) if e["event"] == "activity"]  # fmt: skip
        assert "ChannelPinned" in kinds and "ChannelUnpinned" in kinds
        # A manual promotion of an unpinned channel still works
        reply = call(server, "PUT", "/api/v1/channels/stable", {"version": "3732.0.0"})
        assert reply.status_code == 200, reply.text
    finally:
        server.stop()


def test_two_servers_on_one_postgresql_with_url_payloads_give_the_same_answers(
    tmp_path: Path, pg_url: str, upstream: FixtureUpstream
) -> None:
    first = sync_server(tmp_path / "one", pg_url, upstream)
    second = start(tmp_path / "two", pg_url)  # no --sync, its own empty data dir
    try:
        sync_pass(first)
        for board, version in (
            ("amd64-usr", "3600.0.0"),
            ("amd64-usr", "3700.0.0"),
            ("arm64-usr", "3600.0.0"),
        ):
            wanted = offered(node_check(first, version, board))
            assert wait_until(lambda b=board, v=version, w=wanted: offered_if_any(second, v, b) == w, 15,
                              f"the second server to offer {wanted}")  # fmt: skip
        assert not any((tmp_path / "two" / "data" / "packages").rglob("*.gz"))
    finally:
        first.stop()
        second.stop()


def test_a_sync_pass_while_another_runs_waits_for_its_own(
    tmp_path: Path, sqlite_url: str, upstream: FixtureUpstream
) -> None:
    """POST /api/v1/sync?wait during a pass answers after a pass that started after the call."""
    server = sync_server(tmp_path, sqlite_url, upstream)
    try:
        results: list[dict[str, Any]] = []
        callers = [threading.Thread(target=lambda: results.append(sync_pass(server))) for _ in range(2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(60)
        assert len(results) == 2 and all(r["passes"] >= 2 for r in results)
    finally:
        server.stop()
