"""Databases as servers from before Alembic left them, filled with data.

``legacy_schemas/v<N>.<dialect>.sql`` is the DDL that version N's ``create_all`` emitted: made once
from ``coreroll/server/schema.py`` at the commit that introduced that version (v1: 94bc127, v2:
c11e9df) with ``CreateTable`` / ``CreateIndex`` in ``metadata.sorted_tables`` order. It does not
depend on the revisions it tests.

``make_legacy(url, version)`` builds such a database with channels, releases, groups, instances,
their history, activity and the change log (and for v2, release files and a floor);
``snapshot(url)`` reads every row of every table of it (sorted), to compare after an upgrade.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from coreroll.server.storage import async_url

SCHEMAS = Path(__file__).parent / "legacy_schemas"
LEGACY_TABLES = ("channels", "channel_history", "releases", "groups", "instances", "instance_history",
                 "activity", "changes", "schema_version")  # fmt: skip
V2_TABLES = ("release_files", "release_floors")

_GROUP = {"max_updates_per_period": 2, "period_seconds": 900, "max_concurrent": 1,
          "update_timeout_seconds": 3600, "safe_mode": False, "office_hours": False,
          "timezone": "UTC", "rollout_in_progress": False, "rollout_version": None,
          "halted_reason": None, "updated_at": 1000.0}  # fmt: skip


def _instance(machine_id: str, version: str, track: str, status: int, **extra: Any) -> dict[str, Any]:
    row = {"machine_id": machine_id, "ip": "10.0.0.7", "version": version, "track": track,
           "group_id": track, "status": status, "status_reason": None, "last_check": 1500.0,
           "last_update_version": None, "last_update_granted_at": None, "update_in_progress": False,
           "oem": "ami", "oemversion": "1.2", "alephversion": "3000.0.0", "board": "amd64-usr",
           "bootid": "{b0b0b0b0-0000-4000-8000-000000000000}", "created_at": 1100.0}  # fmt: skip
    return row | extra


ROWS: dict[str, list[dict[str, Any]]] = {
    "channels": [
        {"name": "alpha", "version": None, "updated_at": 1000.0},
        {"name": "beta", "version": "4001.0.0", "updated_at": 1200.0},
        {"name": "stable", "version": "4000.0.0", "updated_at": 1201.0},
    ],
    "channel_history": [
        {"id": 1, "channel": "stable", "version": "4000.0.0", "at": 1201.0},
        {"id": 2, "channel": "beta", "version": "4001.0.0", "at": 1200.0},
    ],
    "releases": [
        {
            "version": "4000.0.0",
            "filename": "update.gz",
            "size": 2_000_000,
            "sha256": "A" * 43 + "=",
            "sha1": "B" * 27 + "=",
            "signed": True,
            "created_at": 1150.0,
        },
        {
            "version": "4001.0.0",
            "filename": "flatcar_production_update.gz",
            "size": 2_147_483_000,
            "sha256": "C" * 43 + "=",
            "sha1": "D" * 27 + "=",
            "signed": False,
            "created_at": 1160.0,
        },
    ],
    "groups": [
        {
            "id": "stable",
            "name": "Stable",
            "track": "stable",
            "channel": "stable",
            "updates_enabled": True,
            **_GROUP,
        },
        {
            "id": "beta",
            "name": "Beta canaries",
            "track": "beta",
            "channel": "beta",
            "updates_enabled": False,
            **_GROUP,
            "halted_reason": "paused by ops@bastion",
        },
    ],
    "instances": [
        _instance("a" * 32, "3999.0.0", "stable", 1),
        _instance(
            "b" * 32,
            "4000.0.0",
            "stable",
            3,
            last_update_version="4000.0.0",
            last_update_granted_at=1300.0,
            status_reason="updated",
        ),
        _instance(
            "c" * 32,
            "3999.0.0",
            "beta",
            7,
            update_in_progress=True,
            last_update_version="4001.0.0",
            last_update_granted_at=1400.0,
            oem="",
            board="arm64-usr",
        ),
    ],
    "instance_history": [
        {
            "id": 1,
            "machine_id": "b" * 32,
            "at": 1300.0,
            "status": 2,
            "version": "3999.0.0",
            "reason": None,
            "event_type": None,
            "event_result": None,
            "errorcode": None,
        },
        {
            "id": 2,
            "machine_id": "b" * 32,
            "at": 1350.0,
            "status": 3,
            "version": "4000.0.0",
            "reason": "rebooted",
            "event_type": 3,
            "event_result": 2,
            "errorcode": None,
        },
        {
            "id": 3,
            "machine_id": "c" * 32,
            "at": 1450.0,
            "status": 3,
            "version": "3999.0.0",
            "reason": "failed",
            "event_type": 3,
            "event_result": 0,
            "errorcode": -2147483639,
        },
    ],
    "activity": [
        {
            "id": 1,
            "at": 1201.0,
            "kind": "ChannelPointed",
            "severity": "info",
            "group_id": None,
            "channel": "stable",
            "version": "4000.0.0",
            "instance": None,
            "message": "stable -> 4000.0.0",
        },
        {
            "id": 2,
            "at": 1450.0,
            "kind": "InstanceUpdateFailed",
            "severity": "error",
            "group_id": "beta",
            "channel": "beta",
            "version": "4001.0.0",
            "instance": "c" * 32,
            "message": "update failed ✗",
        },
    ],
    "changes": [
        {"id": 1, "kind": "channel", "data": '{"name":"stable","version":"4000.0.0"}', "at": 1201.0},
        {"id": 2, "kind": "activity", "data": '{"id":2}', "at": 1450.0},
    ],
}
V2_ROWS: dict[str, list[dict[str, Any]]] = {
    "release_files": [
        {
            "version": "4001.0.0",
            "board": "amd64-usr",
            "filename": "flatcar_production_update.gz",
            "kind": "payload",
            "path": "4001.0.0/amd64-usr/flatcar_production_update.gz",
            "size": 2_147_483_000,
            "sha256": "C" * 43 + "=",
            "sha1": "D" * 27 + "=",
            "format": "update_engine",
            "created_at": 1160.0,
        },
        {
            "version": "4001.0.0",
            "board": "amd64-usr",
            "filename": "oem-azure.gz",
            "kind": "extra",
            "path": "4001.0.0/amd64-usr/oem-azure.gz",
            "size": 5_000_000_000,
            "sha256": "E" * 43 + "=",
            "sha1": "F" * 27 + "=",
            "format": "extra",
            "created_at": 1161.0,
        },
    ],
    "release_floors": [{"version": "4000.0.0", "reason": "new partition layout", "created_at": 1170.0}],
}


def _statements(version: int, dialect: str) -> list[str]:
    ddl = (SCHEMAS / f"v{version}.{dialect}.sql").read_text()
    return [s.strip() for s in ddl.split(";") if s.strip()]


async def _make(url: str, version: int) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            for statement in _statements(version, conn.dialect.name):
                await conn.exec_driver_sql(statement)
            rows = {**ROWS, **(V2_ROWS if version >= 2 else {})}
            rows["schema_version"] = [{"version": 1, "applied_at": 1000.0}]
            if version >= 2:  # upgraded from 1: what a version 2 server inserted
                rows["schema_version"].append({"version": 2, "applied_at": 1100.0})
            for table, table_rows in rows.items():
                columns = list(table_rows[0])
                await conn.execute(
                    text(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
                    ),
                    table_rows,
                )
            if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for table in ("channel_history", "instance_history", "activity", "changes"):
                    await conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
    finally:
        await engine.dispose()


def make_legacy(url: str, version: int) -> None:
    asyncio.run(_make(url, version))


async def _snapshot(url: str, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            found: dict[str, list[tuple[Any, ...]]] = {}
            for table in tables:
                columns = await conn.run_sync(
                    lambda sync, t=table: [c["name"] for c in inspect(sync).get_columns(t)]
                )
                rows = (
                    (await conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))).mappings().all()
                )
                found[table] = sorted((tuple(sorted(dict(r).items())) for r in rows), key=repr)
            return found
    finally:
        await engine.dispose()


def snapshot(url: str, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    return asyncio.run(_snapshot(url, tables))
