"""Retention (issue 18 §4): machines not seen for --forget-instances-after are forgotten with their
history, never one in the middle of an update; history and activity older than --keep-activity go;
all in small batches that leave room for update checks. Real SQLite (and PostgreSQL, slow lane)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from coreroll.cli import main
from coreroll.omaha.codes import InstanceStatus
from coreroll.server import retention as retention_module
from coreroll.server import schema
from coreroll.server.command import register as register_server
from coreroll.server.command_retention import retention_duration
from coreroll.server.lifecycle import ANONYMOUS_INSTALLED, ANONYMOUS_PREFIX
from coreroll.server.metrics import Metrics
from coreroll.server.registry import MID_UPDATE, Instance, Registry
from coreroll.server.retention import BATCH, MAX_REST, MIN_REST, Retention, rest_after
from coreroll.server.settings import DAY, ServerSettings
from coreroll.server.storage import Storage

NOW = 1_790_000_000.0  # 2026-09-21


@dataclass
class Store:
    storage: Storage
    registry: Registry
    metrics: Metrics
    retention: Retention


@asynccontextmanager
async def store(db_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Store]:
    config = ServerSettings(data_dir=tmp_path / "data", db_url=db_url, clock=lambda: NOW, **settings)
    storage = Storage(config.database_url, config.clock)
    await storage.start()
    try:
        registry = Registry(storage, config.stale_window_seconds, cache=storage.is_sqlite)
        metrics = Metrics()
        yield Store(storage, registry, metrics, Retention(config, storage, registry, metrics))
    finally:
        await storage.close()


def machine(machine_id: str, seen_days_ago: float, status: int = InstanceStatus.Complete) -> dict[str, Any]:
    inst = Instance(machine_id, "10.0.0.1", "3999.0.0", "stable", "stable", status=status)
    inst.last_check = NOW - seen_days_ago * DAY
    inst.created_at = inst.last_check
    inst.update_in_progress = status in MID_UPDATE  # as the lifecycle keeps it
    return inst.row()


def history_row(machine_id: str, days_ago: float) -> dict[str, Any]:
    return {"machine_id": machine_id, "at": NOW - days_ago * DAY, "status": 4, "version": "3999.0.0"}


def activity_row(days_ago: float, message: str) -> dict[str, Any]:
    return {"at": NOW - days_ago * DAY, "kind": "ChannelUpdated", "severity": "info", "message": message}


async def fill(s: Store, instances: list[dict[str, Any]], history: list[dict[str, Any]] = (),  # type: ignore[assignment]
               activity: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]  # fmt: skip
    async with s.storage.write() as tx:
        for table, rows in ((schema.instances, instances), (schema.instance_history, history),
                            (schema.activity, activity)):  # fmt: skip
            if rows:
                await tx.conn.execute(insert(table), list(rows))
    await s.registry.load_count()


async def ids(s: Store, table: Any, column: str) -> list[Any]:
    async with s.storage.read() as conn:
        return sorted((await conn.execute(select(table.c[column]))).scalars())


async def forgettable_now(s: Store) -> list[str]:
    """What ``coreroll instances --stale`` lists (the API's ``forgettable=true``)."""
    items, _ = await s.registry.list(now=NOW, forgettable_before=NOW - 30 * DAY, limit=1000)
    return [i["machine_id"] for i in items]


async def test_silent_machines_are_forgotten_with_their_history_but_never_one_mid_update(
    db_url: str, tmp_path: Path
) -> None:
    updating = {f"updating-{InstanceStatus(s).name}": s for s in MID_UPDATE}
    async with store(db_url, tmp_path) as s:
        await fill(
            s,
            [
                machine("gone", 31),
                machine("held", 45, InstanceStatus.OnHold),
                machine("failed", 400, InstanceStatus.Error),
                machine("recent", 29),
                *(machine(mid, 200, status) for mid, status in updating.items()),
            ],
            history=[
                history_row("gone", 40),
                history_row("recent", 35),
                history_row("updating-Installed", 60),
            ],
        )
        # The listing is exactly what the run then forgets.
        assert await forgettable_now(s) == ["failed", "gone", "held"]
        head = s.storage.head
        run = await s.retention.run_once()

        assert (run.instances, run.history) == (3, 1)
        assert await ids(s, schema.instances, "machine_id") == sorted(["recent", *updating])
        assert await ids(s, schema.instance_history, "machine_id") == ["recent", "updating-Installed"]
        assert s.registry.count == 1 + len(updating)
        assert await s.registry.get("gone") is None
        # The dashboard drops them: one feed event each.
        deleted = [
            json.loads(data) for _, kind, data in await s.storage.changes_after(head) if kind == "instance"
        ]
        assert sorted(d["machine_id"] for d in deleted) == ["failed", "gone", "held"]
        assert all(d["deleted"] is True for d in deleted)
        text = s.metrics.render([]).decode()
        assert "coreroll_retention_instances_forgotten_total 3.0" in text
        assert "coreroll_retention_history_deleted_total 1.0" in text
        assert await forgettable_now(s) == []


async def test_an_anonymous_machines_installed_boot_is_forgotten(db_url: str, tmp_path: Path) -> None:
    """machineid="": each boot is its own record, and the one that installed an update is left
    Installed with its part done (lifecycle): silent for 31 days it goes, as any finished machine's."""
    done = machine(f"{ANONYMOUS_PREFIX}boot-1", 31, InstanceStatus.Installed)
    done.update(update_in_progress=False, status_reason=ANONYMOUS_INSTALLED)
    waiting = machine("named", 31, InstanceStatus.Installed)  # a real machine id: still mid-update
    async with store(db_url, tmp_path) as s:
        await fill(s, [done, waiting])
        assert await forgettable_now(s) == [done["machine_id"]]
        assert (await s.retention.run_once()).instances == 1
        assert await ids(s, schema.instances, "machine_id") == ["named"]


async def test_a_machine_that_checked_in_since_it_was_found_is_not_forgotten(tmp_path: Path) -> None:
    async with store(f"sqlite:///{tmp_path / 'r.db'}", tmp_path) as s:
        await fill(s, [machine("back", 1)])  # found silent by the scan, then it checked in
        gone, _ = await s.registry.forget(["back"], NOW - 30 * DAY)
        assert gone == [] and await ids(s, schema.instances, "machine_id") == ["back"]


async def test_a_machine_forgotten_while_its_check_reads_it_is_not_cached_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first check in 30 days loads the row while the retention task deletes it: the check
    must see no row (and register the machine anew), not a cached copy of the deleted one."""
    async with store(f"sqlite:///{tmp_path / 'r.db'}", tmp_path) as s:
        await fill(s, [machine("late", 31)])
        real_read = s.storage.read

        @asynccontextmanager
        async def read_then_forget() -> AsyncIterator[Any]:
            async with real_read() as conn:
                yield conn
            monkeypatch.setattr(s.storage, "read", real_read)
            assert (await s.registry.forget(["late"], NOW - 30 * DAY))[0] == ["late"]

        monkeypatch.setattr(s.storage, "read", read_then_forget)
        assert await s.registry.get("late") is None
        assert s.registry.count == 0


async def test_a_backlog_goes_in_small_transactions_that_let_checks_in(tmp_path: Path) -> None:
    total = BATCH * 5
    async with store(f"sqlite:///{tmp_path / 'r.db'}", tmp_path) as s:
        await fill(s, [machine(f"old-{n:05d}", 60) for n in range(total)])
        batches: list[int] = []
        first_batch = asyncio.Event()
        real_forget = s.registry.forget

        async def counted(machine_ids: list[str], cutoff: float) -> tuple[list[str], int]:
            result = await real_forget(machine_ids, cutoff)
            batches.append(len(result[0]))
            first_batch.set()
            return result

        s.registry.forget = counted  # type: ignore[method-assign]
        run = asyncio.create_task(s.retention.run_once())
        await asyncio.wait_for(first_batch.wait(), 30)
        # An update check's write gets the database between two batches, long before the backlog is gone.
        async with s.storage.write() as tx:
            await tx.conn.execute(insert(schema.instances), [machine("checking-in", 0)])
        assert not run.done() and sum(batches) < total
        assert (await asyncio.wait_for(run, 60)).instances == total
        assert batches == [BATCH] * 5
        assert await ids(s, schema.instances, "machine_id") == ["checking-in"]


async def test_old_history_and_activity_go_and_a_future_stamp_holds_nothing_back(
    db_url: str, tmp_path: Path
) -> None:
    async with store(db_url, tmp_path, keep_activity=90 * DAY) as s:
        await fill(
            s,
            [machine("m", 0)],
            # The lowest ids were written while the clock was a year ahead.
            history=[
                history_row("m", -365),
                history_row("m", 100),
                history_row("m", 91),
                history_row("m", 10),
            ],
            activity=[activity_row(-365, "future"), activity_row(120, "old"), activity_row(1, "new")],
        )
        run = await s.retention.run_once()
        assert (run.history, run.activity) == (2, 1)
        async with s.storage.read() as conn:
            kept = sorted((await conn.execute(select(schema.instance_history.c.at))).scalars())
            messages = sorted((await conn.execute(select(schema.activity.c.message))).scalars())
        assert kept == [NOW - 10 * DAY, NOW + 365 * DAY]
        assert messages == ["future", "new"]
        assert "coreroll_retention_activity_deleted_total 1.0" in s.metrics.render([]).decode()


async def test_never_keeps_everything(tmp_path: Path) -> None:
    async with store(
        f"sqlite:///{tmp_path / 'r.db'}", tmp_path, forget_instances_after=0, keep_activity=0
    ) as s:
        await fill(s, [machine("ancient", 999)], history=[history_row("ancient", 999)],
                   activity=[activity_row(999, "ancient")])  # fmt: skip
        assert await s.retention.run_once() == retention_module.RetentionRun()
        async with s.storage.read() as conn:
            rows = [
                (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (schema.instances, schema.instance_history, schema.activity)
            ]
        assert rows == [1, 1, 1]


async def test_the_change_log_is_trimmed_in_batches(tmp_path: Path) -> None:
    async with store(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, feed_retention=10) as s:
        for n in range(BATCH * 2 + 5):
            async with s.storage.write() as tx:
                tx.emit("activity", {"n": n})
        assert await s.storage.prune_changes(10, BATCH) == BATCH  # one call deletes at most one batch
        assert (await s.retention.run_once()).changes == BATCH * 2 + 5 - 10 - BATCH
        assert len(await s.storage.changes_after(0)) == 10


def test_a_slow_batch_never_puts_the_purge_to_sleep_for_long() -> None:
    # Twice a batch's time, between MIN_REST and MAX_REST: a batch that took 4 s under full load
    # (the loop resuming each round trip late) is followed by half a second, not by 8.
    assert rest_after(0.0) == MIN_REST
    assert rest_after(0.05) == pytest.approx(0.1)
    assert rest_after(4.3) == MAX_REST == 0.5


# ---- settings and flags ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 43200.0), ("1d12h", 1.5 * DAY), ("never", 0.0), ("0", 0.0)],
)
def test_retention_durations(text: str, seconds: float) -> None:
    assert retention_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30 days", "-1d", "٣d", "9" * 400 + "d"])
def test_a_bad_retention_duration_says_so(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        retention_duration(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"forget_instances_after": 3600.0},
            r"--forget-instances-after 1h: at least 1d and longer than --stale-window",
        ),
        (
            {"forget_instances_after": 2 * DAY, "stale_window_seconds": 3 * DAY},
            r"longer than --stale-window \(3d\)",
        ),
        ({"keep_activity": 60.0}, r"--keep-activity 1m: at least 1h, or never"),
        ({"forget_instances_after": float("nan")}, r"--forget-instances-after nan: expected a duration"),
    ],
)
def test_retention_settings_that_would_lose_data_are_refused(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ServerSettings(data_dir=tmp_path, **settings)


def _server_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register_server(parser.add_subparsers())
    return parser.parse_args(["server", *argv])


def test_server_flags_and_the_older_history_days() -> None:
    from coreroll.server.command import _settings

    defaults = _settings(_server_args())
    assert (defaults.forget_instances_after, defaults.keep_activity) == (30 * DAY, 90 * DAY)
    chosen = _settings(_server_args("--forget-instances-after", "never", "--keep-activity", "1d12h"))
    assert (chosen.forget_instances_after, chosen.keep_activity) == (0.0, 1.5 * DAY)
    assert _settings(_server_args("--history-days", "7")).keep_activity == 7 * DAY


def test_server_refuses_a_forget_window_shorter_than_a_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "--forget-instances-after", "12h"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("coreroll server: --forget-instances-after 12h: at least 1d") and err.count("\n") == 1
    )
