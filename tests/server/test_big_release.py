"""Releases past 2 GiB (issue 16, defect 10), on SQLite and PostgreSQL.

A 3 GB payload is a sparse file (only its CrAU header is written), published through
``Catalog.publish_file`` (what an upload ends in, after the bytes are streamed and hashed: that
part keeps the size in a Python int), then read back by a server started on the same database:
the release list, the Omaha answer and ``/packages`` all say 3,000,000,000 bytes. Before, PostgreSQL
stored ``releases.size`` as INTEGER and the publish failed (a 500 at the API). Streaming 3 GB through
HTTP would write 3 GB to disk per database; the size is what broke, so the bytes are left out.
A version 2 database (INTEGER column) is upgraded on start.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from coreroll.omaha.payload import UPDATE_ENGINE_PAYLOAD_VERSION, b64
from coreroll.server import schema
from coreroll.server.catalog import PAYLOAD, Catalog, Release, ReleaseFile
from coreroll.server.storage import Storage
from tests.server.conftest import start
from tests.server.helpers import HTTP, REFERENCE_REQUEST, get, omaha
from tests.server.legacy import make_legacy

SIZE = 3_000_000_000  # > 2**31: past PostgreSQL's INTEGER
VERSION = "4000.0.0"  # newer than REFERENCE_REQUEST's 3975.2.1
FILENAME = "flatcar_production_update.gz"
HASH = b64(b"\x5a" * 32)  # stands in for the sha256 of 3 GB nobody hashed


async def publish_sparse(db_url: str, packages: Path) -> dict[str, Any]:
    """Publish a SIZE-byte update_engine payload (sparse) on the stable channel."""
    storage = Storage(db_url, time.time)
    await storage.start()
    try:
        catalog = Catalog(storage, "http://unused")
        await catalog.load()
        await catalog.ensure_defaults()
        path = f"{VERSION}/amd64-usr/{FILENAME}"
        final = packages / path

        async def place() -> None:
            final.parent.mkdir(parents=True, exist_ok=True)
            with final.open("wb") as handle:
                handle.write(b"CrAU" + struct.pack(">Q", UPDATE_ENGINE_PAYLOAD_VERSION))
                handle.truncate(SIZE)  # a hole: no disk blocks past the header

        now = time.time()
        release = Release(VERSION, FILENAME, SIZE, HASH, HASH, False, now)
        file = ReleaseFile(
            VERSION, "amd64-usr", FILENAME, PAYLOAD, path, SIZE, HASH, HASH, "update_engine", now
        )
        published, created = await catalog.publish_file(release, file, "stable", place)
        assert created
        return published
    finally:
        await storage.close()


def test_a_3_gb_release_is_stored_offered_and_served(tmp_path: Path, db_url: str) -> None:
    packages = tmp_path / "data" / "packages"
    published = asyncio.run(publish_sparse(db_url, packages))
    assert published["payloads"][0]["size"] == SIZE
    assert os.stat(packages / VERSION / "amd64-usr" / FILENAME).st_blocks * 512 < 1024**2  # sparse
    server = start(tmp_path, db_url)  # reads it back from the database
    try:
        payload = get(server, "/api/v1/releases")["releases"][0]["payloads"][0]
        assert (payload["size"], payload["filename"]) == (SIZE, FILENAME)
        package = omaha(server.url, REFERENCE_REQUEST).find("app/updatecheck/manifest/packages/package")
        assert package.get("size") == str(SIZE) and package.get("name") == FILENAME
        url = f"{server.url}/packages/{VERSION}/amd64-usr/{FILENAME}"
        assert HTTP.head(url).headers["content-length"] == str(SIZE)
        tail = HTTP.get(url, headers={"Range": f"bytes={SIZE - 10}-"})
        assert tail.status_code == 206 and tail.content == bytes(10)
        assert tail.headers["content-range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"
    finally:
        server.stop()


async def _column_type(storage: Storage) -> str | None:
    """The PostgreSQL type of ``releases.size`` (None on SQLite)."""
    if storage.is_sqlite:
        return None
    query = "SELECT data_type FROM information_schema.columns WHERE table_name = 'releases' AND column_name = 'size'"
    async with storage.read() as conn:
        return str((await conn.execute(text(query))).scalar_one())


async def _reopened(db_url: str) -> tuple[str | None, int]:
    storage = Storage(db_url, time.time)
    await storage.start()
    try:
        async with storage.read() as conn:
            version = (await conn.execute(select(func.max(schema.schema_version.c.version)))).scalar_one()
        return await _column_type(storage), int(version)
    finally:
        await storage.close()


def test_a_version_2_database_is_upgraded_to_64_bit_sizes(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    make_legacy(db_url, 2)  # what a version 2 server left: INTEGER sizes
    column, version = asyncio.run(_reopened(db_url))
    assert version == 4
    assert "database schema upgraded from version 2 to 4" in caplog.text
    assert column in ("bigint", None)  # None: SQLite (any integer in 8 bytes, whatever the declaration)
    published = asyncio.run(publish_sparse(db_url, tmp_path / "packages"))
    assert published["payloads"][0]["size"] == SIZE
