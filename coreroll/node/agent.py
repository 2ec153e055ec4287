"""NodeAgent: runs one node (update engine + locksmithd + the report to etcd), cheaply enough that
the fleet simulator runs a thousand of them in one asyncio process.

A node's state directory holds its disk (`coreroll.node.partitions`), `update.conf`, `machine-id`
and `update_engine.json`; `provision_node()` creates one. The agent:
- boots the disk (gptprio); `comes_up(partition) -> bool` is the fleet's fault hook: False means
  the image does not come up, so nothing runs, nothing marks it good, and after
  `failed_boot_timeout` clock seconds the machine is reset and GRUB chooses again (tries
  exhausted -> the old partition: an automatic rollback, reported as 3/0 errorcode 44 by the
  engine's next check);
- runs the `UpdateEngine` and, once it reports UPDATED_NEED_REBOOT, the `RebootManager`
  (REBOOT_STRATEGY, LOCKSMITHD_GROUP and the window from update.conf). A reboot stops the engine,
  waits `reboot_duration` clock seconds, boots the disk again and starts over; the manager
  releases the lock after the boot;
- publishes `coreroll/v1/nodes/<id>/status` (`coreroll.node.nodestatus`, written by
  `coreroll.node.reporter.StatusReporter`) on every change
  (coalesced: at most one write per `min_write_gap` real seconds; the milliseconds a check spends
  in UPDATE_STATUS_CHECKING_FOR_UPDATE are not published) and every `report_interval`
  real seconds, and keeps `coreroll/v1/nodes/<id>/alive` under a lease of 3 x report_interval
  (revoked on a clean stop or reboot, left to expire when the node dies);
- runs `coreroll/v1/commands/<id>/<cmd>` in order and deletes each
  (`coreroll.node.commandrunner.CommandRunner`): `check` (an on-demand check),
  `set-channel` (args `{"channel": C}`: rewrites GROUP in update.conf and restarts the engine),
  anything else is logged, recorded in the status (`last_command`) and the audit log, deleted,
  and nothing else happens.

etcd, HTTP and the lock store are shared: pass one v3 `EtcdKV` (coreroll.etcd.port), one httpx.AsyncClient, one
`CommandRouter` and one `LockWaiter` to every agent of a process; no threads are used.

Public API:
- `AgentOptions` (report_interval, min_write_gap, reboot_duration, failed_boot_timeout, timings,
  download_rate, hostname, oem, oemversion, fsync).
- `NodeAgent(state_dir, etcd, http, clock, *, public_key=None, lock_store=None, lock_waiter=None,
  router=None, comes_up=None, options=None, rng=None, etcd_config=None)`:
  `async start()`, `async stop()` (clean: lease revoked), `async kill()` (a crash: nothing
  cleaned up, the alive key expires), attributes `machine_id`, `disk`, `conf`, `engine`,
  `reboot_manager`, `boot_count`, `boot_id`, `up` (an asyncio.Event set while the node is up),
  `last_command`, `status_document() -> dict`.
- Re-exported from `coreroll.node.provision` (a node's state directory): `provision_node(...)`,
  `read_machine_id(state_dir)`, `omaha_url(server)`, `UPDATE_CONF`, `MACHINE_ID`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV
from coreroll.locks import LockStore
from coreroll.node.clock import Clock
from coreroll.node.commandbus import CommandRouter
from coreroll.node.commandrunner import CommandRunner, channel_arg
from coreroll.node.engine import EngineSnapshot, EngineTimings, NodeIdentity, UpdateEngine
from coreroll.node.nodestatus import RebootInfo, build_status, encode_alive
from coreroll.node.partitions import Disk, NoBootablePartitionError, Partition
from coreroll.node.provision import MACHINE_ID, UPDATE_CONF, omaha_url, provision_node, read_machine_id
from coreroll.node.reboot import LockWaiter, RebootManager, window_from_settings
from coreroll.node.reporter import StatusReporter
from coreroll.node.updateconf import UpdateConf, UpdateConfError
from coreroll.omaha.codes import UPDATE_STATUS_CHECKING_FOR_UPDATE, UPDATE_STATUS_UPDATED_NEED_REBOOT

__all__ = [
    "MACHINE_ID",
    "UPDATE_CONF",
    "AgentOptions",
    "NodeAgent",
    "omaha_url",
    "provision_node",
    "read_machine_id",
]

log = logging.getLogger(__name__)

_NEED_REBOOT = str(UPDATE_STATUS_UPDATED_NEED_REBOOT)
_CHECKING = str(UPDATE_STATUS_CHECKING_FOR_UPDATE)
_STOP_TIMEOUT = 5.0  # real seconds a stopping task gets before it is reported and left behind


@dataclass(frozen=True)
class AgentOptions:
    report_interval: float = 30.0  # real seconds; the alive lease lives 3x this
    min_write_gap: float = 0.2  # real seconds between two status writes
    reboot_duration: float = 60.0  # clock seconds
    failed_boot_timeout: float = 300.0  # clock seconds before a machine that did not come up is reset
    timings: EngineTimings = field(default_factory=EngineTimings)
    download_rate: float | None = None  # bytes per clock second; None = as fast as the network
    hostname: str | None = None
    oem: str = ""
    oemversion: str = ""
    fsync: bool = True  # the fleet turns it off: a thousand simulated disks need no durability


class NodeAgent:
    """One node; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        etcd: EtcdKV,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        public_key: Any = None,
        lock_store: LockStore | None = None,
        lock_waiter: LockWaiter | None = None,
        router: CommandRouter | None = None,
        comes_up: Callable[[Partition], bool] | None = None,
        options: AgentOptions | None = None,
        rng: random.Random | None = None,
        etcd_config: EtcdConfig | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.etcd = etcd
        self.http = http
        self.clock = clock
        self.public_key = public_key
        self.options = options or AgentOptions()
        self.rng = rng or random.Random()
        self.comes_up = comes_up
        self.etcd_config = etcd_config or EtcdConfig()
        # Called with every engine status change, as it happens (the fleet injects faults on them).
        self.engine_observers: list[Callable[[EngineSnapshot], None]] = []
        self.machine_id = read_machine_id(self.state_dir)
        self.hostname = self.options.hostname or socket.gethostname()
        self.disk = Disk(self.state_dir, fsync=self.options.fsync)
        self.conf = UpdateConf.load(self.state_dir / UPDATE_CONF)
        for warning in self.conf.warnings:
            log.warning("%s", warning)
        self._own_store = lock_store is None
        if lock_store is None:
            from coreroll.locks.v3store import V3LockStore

            lock_store = V3LockStore(self.etcd_config, kv=etcd)
        self.lock_store = lock_store
        self._own_waiter = lock_waiter is None
        self.lock_waiter = lock_waiter or LockWaiter(lock_store)
        self._own_router = router is None
        self.router = router or CommandRouter(etcd)
        self.reboot_manager = self._new_reboot_manager()
        self.engine: UpdateEngine | None = None
        self.boot_count = 0
        self.boot_id = ""
        self.booted_at = 0.0
        self.up = asyncio.Event()
        self.last_command: dict[str, Any] | None = None
        self._main: asyncio.Task[None] | None = None
        self._up_tasks: list[asyncio.Task[None]] = []
        self._engine_task: asyncio.Task[None] | None = None
        self._need_reboot = asyncio.Event()
        self._prefix = f"[{self.hostname}] "
        self._reporter = StatusReporter(
            etcd,
            self.machine_id,
            self.status_document,
            self._alive_value,
            report_interval=self.options.report_interval,
            min_write_gap=self.options.min_write_gap,
            log_prefix=self._prefix,
        )
        self._commands = CommandRunner(
            self.router,
            self.machine_id,
            {"check": self._check_command, "set-channel": self._set_channel_command},
            clock=self.clock,
            etcd=etcd,
            etcd_config=self.etcd_config,
            hostname=self.hostname,
            on_done=self._command_done,
            log_prefix=self._prefix,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _new_reboot_manager(self) -> RebootManager:
        conf = self.conf
        window = window_from_settings(conf.window_start, conf.window_length)
        return RebootManager(
            conf.reboot_strategy,
            self.machine_id,
            self.lock_store,
            conf.locksmith_group,
            window,
            self.clock,
            self._reboot,
            lock_waiter=self.lock_waiter,
            on_event=self._manager_event,
        )

    def _manager_event(self, message: str) -> None:
        self._mark_dirty()  # holds_lock / state may have changed

    async def start(self) -> None:
        if self._main is not None:
            return
        if self._own_router:
            await self.router.start()
        self._main = asyncio.create_task(self._lifecycle(), name=f"agent-{self.machine_id[:8]}")

    async def stop(self) -> None:
        """A clean shutdown: the engine stops, the last status is written, the lease revoked."""
        await self._halt(clean=True)

    async def kill(self) -> None:
        """The machine dies: everything stops at once; the alive key expires with its lease."""
        await self._halt(clean=False)

    async def _halt(self, *, clean: bool) -> None:
        main, self._main = self._main, None
        if main is not None:
            main.cancel()
            await asyncio.wait({main})
        await self._bring_down(clean=clean)
        if self._own_router:
            await self.router.stop()
        if self._own_waiter:
            await self.lock_waiter.stop()

    async def _lifecycle(self) -> None:
        try:
            await self._boot_until_up()
            while True:
                await self._bring_up()
                await self._need_reboot.wait()
                rebooted = await self.reboot_manager.run_until_rebooted()
                if not rebooted:  # strategy "off": the update waits for someone else to reboot
                    await asyncio.Event().wait()
        except NoBootablePartitionError as exc:
            log.error("%sno bootable partition: %s", self._prefix, exc)

    async def _boot_until_up(self) -> None:
        while True:
            partition = self.disk.boot()
            self.boot_count += 1
            self.boot_id = str(uuid.uuid4())
            self.booted_at = self.clock.now()
            if self.comes_up is None or self.comes_up(partition):
                log.info("%sbooted %s (%s)", self._prefix, partition.label, partition.version)
                return
            log.warning(
                "%s%s (%s) did not come up; reset in %.0fs",
                self._prefix,
                partition.label,
                partition.version,
                self.options.failed_boot_timeout,
            )
            await self.clock.sleep(self.options.failed_boot_timeout)

    async def _reboot(self) -> None:
        """reboot_fn for the RebootManager: down, the reboot itself, GRUB, back up to the OS."""
        log.info("%srebooting", self._prefix)
        await self._bring_down(clean=True)
        await self.clock.sleep(self.options.reboot_duration)
        await self._boot_until_up()

    async def _bring_up(self) -> None:
        self._need_reboot.clear()
        self.conf = UpdateConf.load(self.state_dir / UPDATE_CONF)
        self._start_engine()
        self._up_tasks = [
            asyncio.create_task(self._reporter.run(), name=f"reporter-{self.hostname}"),
            asyncio.create_task(self._commands.run(), name=f"commands-{self.hostname}"),
            asyncio.create_task(self.reboot_manager.release_after_boot(), name=f"release-{self.hostname}"),
        ]
        self.up.set()
        self._mark_dirty()

    async def _bring_down(self, *, clean: bool) -> None:
        was_up = self.up.is_set()
        self.up.clear()
        # The list is emptied only once its tasks are over: a kill() that lands while a clean
        # bring-down waits must still find them, or a reporter would beat the alive key for ever.
        tasks = self._up_tasks
        for task in tasks:
            task.cancel()
        await self._stop_engine()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)
            for task in stuck:
                log.error("%s%s did not stop within %ss", self._prefix, task.get_name(), _STOP_TIMEOUT)
        self._up_tasks = []
        await self._reporter.shut_down(clean=clean and was_up)

    # -- engine ------------------------------------------------------------------------------

    def _start_engine(self) -> None:
        conf = self.conf
        self.engine = UpdateEngine(
            disk=self.disk,
            state_dir=self.state_dir,
            server_url=conf.server,
            track=conf.group,
            identity=NodeIdentity(
                self.machine_id, "{" + self.boot_id + "}", self.options.oem, self.options.oemversion
            ),
            clock=self.clock,
            http=self.http,
            public_key=self.public_key,
            timings=self.options.timings,
            rng=self.rng,
            download_rate=self.options.download_rate,
            on_change=self._engine_changed,
        )
        self._engine_changed(self.engine.snapshot)
        self._engine_task = asyncio.create_task(self._run_engine(self.engine))

    async def _run_engine(self, engine: UpdateEngine) -> None:
        while True:
            try:
                await engine.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%supdate engine failed; restarting it in 60s", self._prefix)
                await self.clock.sleep(60)

    async def _stop_engine(self) -> None:
        task, self._engine_task = self._engine_task, None
        if task is not None:
            task.cancel()
            _, stuck = await asyncio.wait({task}, timeout=_STOP_TIMEOUT)
            if stuck:
                log.error("%supdate engine did not stop within %ss", self._prefix, _STOP_TIMEOUT)

    def _engine_changed(self, snapshot: EngineSnapshot) -> None:
        for observer in self.engine_observers:
            observer(snapshot)
        if snapshot.status == _NEED_REBOOT:
            self._need_reboot.set()
        if snapshot.status != _CHECKING:
            # A check lasts milliseconds: reporting CHECKING would double the etcd writes of
            # every uneventful check for a state nobody gets to see.
            self._mark_dirty()

    # -- reporting ---------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._reporter.mark_dirty()

    def status_document(self) -> dict[str, Any]:
        engine = self.engine
        snapshot = (
            engine.snapshot if engine is not None else EngineSnapshot("UPDATE_STATUS_IDLE", 0.0, "", 0, 0)
        )
        reboot = self.reboot_manager.status()
        return build_status(
            machine_id=self.machine_id,
            hostname=self.hostname,
            channel=self.conf.group,
            server=self.conf.server,
            disk=self.disk,
            update=snapshot,
            reboot=RebootInfo(
                reboot["strategy"], reboot["lock_group"], reboot["window"], reboot["holds_lock"]
            ),
            boot_id=self.boot_id,
            booted_at=self.booted_at,
            reported_at=self.clock.now(),
            last_command=self.last_command,
        )

    def _alive_value(self) -> bytes:
        return encode_alive(self.boot_id, self.hostname)

    # -- commands (run by commandrunner.CommandRunner) -----------------------------------------

    def _command_done(self, record: dict[str, Any]) -> None:
        self.last_command = record
        self._mark_dirty()

    async def _check_command(self, args: dict[str, Any]) -> tuple[str, bool]:
        engine = self.engine
        if engine is not None and engine.request_check():
            return "update check started", False
        status = engine.status if engine is not None else "no engine"
        return f"check ignored: engine is {status}", False

    async def _set_channel_command(self, args: dict[str, Any]) -> tuple[str, bool]:
        try:
            channel = channel_arg(args)
        except ValueError as exc:
            return str(exc), True
        old = self.conf.group
        try:
            self.conf.set("GROUP", channel)
            self.conf.save(self.state_dir / UPDATE_CONF)
        except (UpdateConfError, OSError) as exc:
            self.conf = UpdateConf.load(self.state_dir / UPDATE_CONF)
            return f"set-channel refused: {exc}", True
        await self._stop_engine()
        self._start_engine()
        return f"channel {old} -> {channel}; update engine restarted", False
