"""Publishing under concurrency and crashes (issue 10 defects 4 and 9a), with real uploads to a real
server: two uploads of one version with different bytes never leave the catalog advertising one
file's hash while /packages serves the other; an upload killed mid-way leaves no temp file behind
once the server is started again; a database from before boards keeps serving its releases."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coreroll.server.runner import RunningServer, start_server_process
from tests.omaha.crau_builder import build_crau, image_bytes
from tests.server.conftest import start
from tests.server.helpers import (
    HTTP,
    check_status,
    get,
    omaha,
    publish,
    publish_real,
    real_payload,
    request_xml,
    wait_until,
)

ROUNDS = 6


def _payload(tag: bytes, size: int = 256 * 1024) -> bytes:
    """A real update_engine payload of a ``size``-byte image, different per tag."""
    return build_crau(image_bytes(tag.decode(), size))


def _held_body(data: bytes, barrier: threading.Barrier) -> Iterator[bytes]:
    """The upload minus its last byte, then (once both uploads got that far) the last byte."""
    yield data[:-1]
    barrier.wait(timeout=20)
    yield data[-1:]


def test_concurrent_uploads_of_one_version_publish_one_file(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"}
    for round_ in range(ROUNDS):
        version = f"4200.0.{round_}"
        bodies = [_payload(b"first upload %d " % round_), _payload(b"second upload %d " % round_)]
        barrier = threading.Barrier(2)
        statuses: list[int] = [0, 0]

        def send(i: int, version: str = version, bodies: list[bytes] = bodies, barrier: threading.Barrier = barrier,
                 statuses: list[int] = statuses) -> None:  # fmt: skip
            with httpx.Client(timeout=30) as client:
                reply = client.post(
                    f"{server.url}/api/v1/releases",
                    params={"version": version, "filename": "flatcar_production_update.gz"},
                    content=_held_body(bodies[i], barrier),
                    headers=headers,
                )
            statuses[i] = reply.status_code

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(statuses) == [201, 409], f"round {round_}: {statuses}"

        (release,) = [r for r in HTTP.get(f"{server.url}/api/v1/releases").json()["releases"]
                      if r["version"] == version]  # fmt: skip
        served = HTTP.get(release["url"]).content
        winner = bodies[statuses.index(201)]
        assert served == winner, f"round {round_}: /packages serves the other upload's bytes"
        assert release["sha256"] == base64.b64encode(hashlib.sha256(served).digest()).decode()
        assert release["size"] == len(served)

    # The same bytes again are idempotent: 200, nothing changes.
    again = HTTP.post(f"{server.url}/api/v1/releases", params={"version": version, "filename": "flatcar_production_update.gz"},
                      content=winner, headers=headers)  # fmt: skip
    assert again.status_code == 200 and again.json()["sha256"] == release["sha256"]


@pytest.mark.slow  # two server processes: ~4 s
def test_leftover_upload_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server_process(data_dir)
    packages = data_dir / "packages"
    sent = threading.Event()
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield real_payload("killed mid-upload", 200_000)[:65536]
        sent.set()
        release.wait(timeout=30)  # the server is killed while this upload is open
        yield b"never sent"

    def upload() -> None:
        try:
            httpx.post(f"{server.url}/api/v1/releases", params={"version": "4300.0.0"}, content=body(),
                       headers={"Authorization": f"Bearer {server.token}",
                                "Content-Type": "application/octet-stream"}, timeout=30)  # fmt: skip
        except httpx.HTTPError:
            pass  # the server died mid-upload, as intended

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert sent.wait(timeout=20)
        leftovers = wait_until(lambda: list(packages.glob(".upload-*")), what="the upload's temp file")
        server.kill()  # SIGKILL mid-upload: the temp file stays behind
        assert all(p.exists() for p in leftovers)
    finally:
        release.set()
        uploader.join(timeout=30)
        server.kill()

    restarted = start_server_process(data_dir)
    try:
        assert list(packages.glob(".upload-*")) == []
        log = (data_dir / "server.log").read_text()
        assert "removed leftover upload" in log and leftovers[0].name in log
        assert HTTP.get(f"{restarted.url}/api/v1/releases").json()["releases"] == []
    finally:
        restarted.stop()


def test_a_version_1_database_is_upgraded_and_its_releases_still_served(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Releases stored before boards existed (files at <version>/<filename>, no release_files row)
    become amd64-usr payloads at start, their format read from the file: a signed container stays
    agents-only, a CrAU version 1 file is offered to update_engine."""
    server = start(tmp_path, sqlite_url)
    publish(server, "4000.0.0", "stable")  # synthetic (signed)
    publish_real(server, "4001.0.0", "beta")
    server.stop()
    packages = tmp_path / "data" / "packages"
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:  # what a version 1 server left
        db.execute("DELETE FROM release_files")
        db.execute("UPDATE schema_version SET version = 1")
    for version, name in (("4000.0.0", "update.gz"), ("4001.0.0", "flatcar_production_update.gz")):
        (packages / version / "amd64-usr" / name).rename(packages / version / name)

    server = start(tmp_path, sqlite_url)
    try:
        releases = {r["version"]: r for r in get(server, "/api/v1/releases")["releases"]}
        assert [(p["board"], p["format"]) for p in releases["4000.0.0"]["payloads"]] == [
            ("amd64-usr", "coreroll")
        ]
        assert [(p["board"], p["format"]) for p in releases["4001.0.0"]["payloads"]] == [
            ("amd64-usr", "update_engine")
        ]
        check = omaha(server.url, request_xml("a" * 32, "3999.0.0", "beta", agent=False)).find(
            "app/updatecheck"
        )
        codebase = check.find("urls/url").get("codebase")
        assert codebase == f"{server.url}/packages/4001.0.0/"  # the old URL keeps working
        assert HTTP.get(codebase + "flatcar_production_update.gz").status_code == 200
        assert check_status(omaha(server.url, request_xml("b" * 32, "3999.0.0", agent=False))) == "noupdate"
        assert check_status(omaha(server.url, request_xml("c" * 32, "3999.0.0"))) == "ok"
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
            assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 4
    finally:
        server.stop()
