"""End to end with the dashboard: a real host's reporter shows in the watch model (as the dashboard
reads it from etcd) with its real USR partition, version, channel and update status, and the
dashboard's `c` and `s` actions (and keys, in the real app) reach update_engine and update.conf
through the reporter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.server.runner import RunningServer
from coreroll.watch.actions import Actions
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from tests.host.conftest import Services
from tests.host.fakehost import ETC_UPDATE_CONF, MACHINE_ID, make_host
from tests.host.helpers import start_reporter
from tests.watch.conftest import start_server
from tests.watch.helpers import wait_model


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "server")
    yield running
    running.stop()


@pytest.fixture
async def v3(clean_etcd: str) -> AsyncIterator[Any]:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    yield client
    await client.close()


async def test_reporter_node_in_the_dashboard_and_its_actions(
    tmp_path: Path, services: Services, v3: Any, clean_etcd: str, server: RunningServer
) -> None:
    root = make_host(tmp_path / "host", usr="USR-B", version="3850.0.0")
    reporter = await start_reporter(root, v3, clean_etcd, bus_address=services.address)
    config = EtcdConfig(endpoints=(clean_etcd,))
    buffer, model = UpdateBuffer(), FleetModel()
    source = EtcdSource(config, buffer.put)
    task = asyncio.create_task(source.run())
    try:
        await wait_model(
            model,
            buffer,
            lambda m: (r := m.get(MACHINE_ID)) is not None and r.online is True and r.report is not None,
            what="the host's row",
        )
        row = model.get(MACHINE_ID)
        assert row is not None and row.error is None
        assert (row.hostname, row.active_partition, row.version, row.channel) == (
            "worker-7",
            "USR-B",
            "3850.0.0",
            "beta",
        )
        assert (row.update_status, row.reboot_strategy, row.lock_group) == (
            "UPDATE_STATUS_IDLE",
            "etcd-lock",
            "workers",
        )

        services.engine.set_status(0.25, "UPDATE_STATUS_DOWNLOADING", "3900.0.0", 1000)
        await wait_model(
            model, buffer, lambda m: m.get(MACHINE_ID).update_status == "UPDATE_STATUS_DOWNLOADING"
        )
        row = model.get(MACHINE_ID)
        assert (row.update_progress, row.new_version) == (0.25, "3900.0.0")

        actions = Actions(config, server.url, server.token, by="ops@bastion")
        result = await actions.check([MACHINE_ID])  # the `c` key
        assert result.ok, result.message
        await asyncio.wait_for(services.engine.attempted.wait(), 10)
        await wait_model(
            model, buffer,
            lambda m: (c := m.get(MACHINE_ID).last_command) is not None and c.action == "check",
            what="the check's result in the row",
        )  # fmt: skip
        assert model.get(MACHINE_ID).last_command.result == "update check started (AttemptUpdate)"

        result = await actions.set_channel([MACHINE_ID], "alpha")  # the `s` key, after the picker
        assert result.ok, result.message
        await wait_model(model, buffer, lambda m: m.get(MACHINE_ID).channel == "alpha", what="channel alpha")
        assert (root / "etc/flatcar/update.conf").read_text() == ETC_UPDATE_CONF.replace(
            "GROUP=beta", "GROUP=alpha"
        )
        assert services.systemd.restarts == [("update-engine.service", "replace")]
    finally:
        source.stop()
        await asyncio.wait_for(task, 5)
        await reporter.stop()


async def test_reporter_node_on_the_dashboards_screen_and_its_keys(
    tmp_path: Path, services: Services, v3: Any, clean_etcd: str, server: RunningServer
) -> None:
    """The same through the real app: the row on screen, then `c` and `s` pressed by an operator."""
    from tests.tui.helpers import wait_for, wait_for_text
    from tests.tui.live import make_live_app, pick_channel
    from widgets.node_table import NodeTable

    root = make_host(tmp_path / "host", usr="USR-B", version="3850.0.0")
    reporter = await start_reporter(root, v3, clean_etcd, bus_address=services.address)
    app = make_live_app(clean_etcd, server.url, server.token)
    try:
        async with app.run_test(size=(160, 48), notifications=True) as pilot:
            text = await wait_for_text(app, "worker-7", 15)
            line = next(row for row in text.splitlines() if "worker-7" in row)
            # channel, version, booted USR, the other USR's version (unknown until an update), status
            assert line.split("worker-7", 1)[1].split()[:5] == ["beta", "3850.0.0", "USR-B", "-", "idle"], (
                line
            )
            table = app.main_screen.query_one("#nodes", NodeTable)
            await wait_for(lambda: table.move_cursor_to_key(MACHINE_ID), 5, "the host's row")

            await pilot.press("c")
            await asyncio.wait_for(services.engine.attempted.wait(), 10)

            await wait_for(lambda: app.model.channels(), 10, "channels from the server")
            await pick_channel(app, pilot, "alpha")
            await pilot.press("y")
            await wait_for(
                lambda: services.systemd.restarts == [("update-engine.service", "replace")],
                10,
                "update-engine restarted",
            )
            assert "GROUP=alpha" in (root / "etc/flatcar/update.conf").read_text()
            await wait_for(lambda: app.model.get(MACHINE_ID).channel == "alpha", 10, "channel alpha")
    finally:
        await reporter.stop()
