"""What the upstream sync remembers in the database, and the ``GET /api/v1/sync`` report.

``SyncState`` is one ``sync_state`` row (per channel and board): the version upstream last offered
as its target, the newest version stored here for it (what the next request says it runs), when
upstream was last asked and last answered without a failure, the last failure and how many in a
row. ``await load_states(storage)``; ``await save_state(tx, state)``; ``await record_refusal(tx,
version, board, reason)`` / ``clear_refusal`` keep ``sync_refusals``. ``await sync_report(storage,
catalog, status)`` is the report: the sync's configuration and what it is doing (``status``, from the
running ``Syncer``; None on a server without ``--sync``), each channel/board with its pin, and the
refused releases. Times leave as ISO 8601.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import insert, select

from coreroll.server import schema
from coreroll.server.catalog import Catalog
from coreroll.server.records import iso
from coreroll.server.storage import Storage, Tx


@dataclass(slots=True)
class SyncState:
    channel: str
    board: str
    upstream_version: str | None = None
    synced_version: str | None = None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    failures: int = 0

    def to_json(self, pinned: str | None) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "board": self.board,
            "upstream_version": self.upstream_version,
            "synced_version": self.synced_version,
            "last_attempt_at": iso(self.last_attempt_at),
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
            "failures": self.failures,
            "pinned": pinned,
        }


async def load_states(storage: Storage) -> dict[tuple[str, str], SyncState]:
    async with storage.read() as conn:
        rows = await conn.execute(select(schema.sync_state))
        return {(r.channel, r.board): SyncState(**dict(r._mapping)) for r in rows}


async def save_state(tx: Tx, state: SyncState) -> None:
    table = schema.sync_state
    await tx.conn.execute(
        table.delete().where((table.c.channel == state.channel) & (table.c.board == state.board))
    )
    await tx.conn.execute(insert(table).values(**asdict(state)))


async def record_refusal(tx: Tx, version: str, board: str, reason: str) -> None:
    await clear_refusal(tx, version, board)
    await tx.conn.execute(
        insert(schema.sync_refusals).values(version=version, board=board, reason=reason, at=tx.now)
    )


async def clear_refusal(tx: Tx, version: str, board: str) -> None:
    table = schema.sync_refusals
    await tx.conn.execute(table.delete().where((table.c.version == version) & (table.c.board == board)))


async def sync_report(storage: Storage, catalog: Catalog, status: dict[str, Any] | None) -> dict[str, Any]:
    states = await load_states(storage)
    async with storage.read() as conn:
        refusals = list(
            await conn.execute(select(schema.sync_refusals).order_by(schema.sync_refusals.c.at.desc()))
        )
    return {
        "enabled": status is not None,
        **(status or {}),
        "channels": [states[key].to_json(catalog.pins.get(key[0])) for key in sorted(states)],
        "pins": dict(sorted(catalog.pins.items())),
        "refused": [
            {"version": r.version, "board": r.board, "reason": r.reason, "at": iso(r.at)} for r in refusals
        ],
    }
