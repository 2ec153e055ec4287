"""The report loop of `coreroll report`: one real host's status and alive lease in etcd, and the
dashboard's commands run on it.

It reuses the simulated agent's parts: `coreroll.node.reporter.StatusReporter` writes the status
document (`coreroll.host.view.HostView.document`) on every change, coalesced, and every
`report_interval`, and keeps `coreroll/v1/nodes/<id>/alive` under a lease of 3 x report_interval;
`coreroll.node.commandbus.CommandRouter` + `coreroll.node.commandrunner.CommandRunner` run the
queued commands with `coreroll.host.commands.HostCommands`. update_engine's StatusUpdate signals
are published as they arrive; everything is read again every `report_interval` and after each
command. A problem reading the host is logged once (until it goes away and comes back) and the
value it concerns is reported as unknown: nothing read from the host stops the loop.

Public API: `ReportOptions(report_interval, min_write_gap, bus_address, cgpt, client_tool)`,
`HostReporter(root, etcd, *, etcd_config, options=None, restart=None)` (restart None: systemd
over D-Bus): `async start()`, `async stop(clean=True)`, `view`, `bus`, `machine_id`,
`last_command`, `status_document()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV
from coreroll.host.commands import HostCommands
from coreroll.host.dbus import SystemBus
from coreroll.host.restart import Restarter, systemd_restart
from coreroll.host.update_engine import UpdateEngine
from coreroll.host.view import HostView
from coreroll.node.clock import RealClock
from coreroll.node.commandbus import CommandRouter
from coreroll.node.commandrunner import CommandRunner
from coreroll.node.engine_types import EngineSnapshot
from coreroll.node.nodestatus import encode_alive
from coreroll.node.reporter import StatusReporter

__all__ = ["HostReporter", "ReportOptions"]

log = logging.getLogger(__name__)

_PROBLEM_MEMORY = 256  # distinct problems remembered, so each is logged once


@dataclass(frozen=True)
class ReportOptions:
    report_interval: float = 30.0  # seconds; the alive lease lives 3x this
    min_write_gap: float = 0.2  # seconds between two status writes
    bus_address: str | None = None  # None: the system bus
    cgpt: str = "cgpt"
    client_tool: str = "update_engine_client"


class HostReporter:
    def __init__(
        self,
        root: Path,
        etcd: EtcdKV,
        *,
        etcd_config: EtcdConfig,
        options: ReportOptions | None = None,
        restart: Restarter | None = None,
    ) -> None:
        self.options = options or ReportOptions()
        self.clock = RealClock()
        self.bus = SystemBus(self.options.bus_address)
        self.engine = UpdateEngine(self.bus, self._engine_signal, client_tool=self.options.client_tool)
        self.engine.start()
        self.view = HostView(Path(root), self.engine, cgpt=self.options.cgpt)  # HostFileError: no machine id
        self.machine_id = self.view.machine_id
        self.last_command: dict[str, Any] | None = None
        self._logged: dict[str, None] = {}
        self._refresh_lock = asyncio.Lock()
        hostname = self.view.facts.hostname or self.machine_id
        self._prefix = f"[{hostname}] "
        self.router = CommandRouter(etcd)
        self._reporter = StatusReporter(
            etcd,
            self.machine_id,
            self.status_document,
            lambda: encode_alive(self.view.facts.boot_id, self.view.facts.hostname),
            report_interval=self.options.report_interval,
            min_write_gap=self.options.min_write_gap,
            log_prefix=self._prefix,
        )
        commands = HostCommands(Path(root), self.engine, restart or systemd_restart(self.bus), self.refresh)
        self._commands = CommandRunner(
            self.router,
            self.machine_id,
            commands.handlers,
            clock=self.clock,
            etcd=etcd,
            etcd_config=etcd_config,
            hostname=hostname,
            on_done=self._command_done,
            log_prefix=self._prefix,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def status_document(self) -> dict[str, Any]:
        return self.view.document(self.clock.now(), self.last_command)

    def _engine_signal(self, snapshot: EngineSnapshot, problems: list[str]) -> None:
        self.view.set_engine(snapshot, problems)
        self._log_problems()
        self._reporter.mark_dirty()

    def _command_done(self, record: dict[str, Any]) -> None:
        self.last_command = record
        self._reporter.mark_dirty()

    def _log_problems(self) -> None:
        current = dict.fromkeys(self.view.problems())
        for problem in current:
            if problem not in self._logged:
                log.warning("%s%s", self._prefix, problem)
        self._logged = dict(list(current.items())[-_PROBLEM_MEMORY:])

    async def refresh(self) -> None:
        """Read the host again and publish."""
        async with self._refresh_lock:
            if not self.bus.connected and await self.bus.connect():
                log.info("%sconnected to the system bus", self._prefix)
            await self.view.refresh()
        self._log_problems()
        self._reporter.mark_dirty()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.report_interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad read must not stop the reports
                log.exception(
                    "%sreading the host failed; trying again in %ss",
                    self._prefix,
                    self.options.report_interval,
                )

    async def start(self) -> None:
        await self.refresh()
        if self.view.engine_via is not None:
            log.info("%supdate_engine reached via %s", self._prefix, self.view.engine_via)
        await self.router.start()
        self._tasks = [
            asyncio.create_task(self._reporter.run(), name="host-report"),
            asyncio.create_task(self._commands.run(), name="host-commands"),
            asyncio.create_task(self._refresh_loop(), name="host-refresh"),
        ]

    async def stop(self, *, clean: bool = True) -> None:
        """Clean: the last status written and the lease revoked; else the lease is left to expire."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await self._reporter.shut_down(clean=clean)
        await self.router.stop()
        with contextlib.suppress(Exception):
            await self.bus.close()
