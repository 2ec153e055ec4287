"""The fleet simulator: N node agents in one asyncio process on one shared scaled clock.

Every node is a real `coreroll.node.agent.NodeAgent` with its own state directory (disk,
update.conf, machine-id), talking Omaha to the real server and taking real locks in etcd. What
they share is the plumbing: one v3 `EtcdKV`, one lock store and `LockWaiter`, one command router,
one httpx client (nodes with a corrupted-payload fault get their own). The scenario
(`coreroll.fleet.scenario`) assigns channels, lock groups, download speeds and reboot durations,
and picks the nodes that suffer faults:
- a release that does not boot: `comes_up` says no for any version but the node's first one,
  so GRUB uses up the try and falls back (the engine reports 3/0 errorcode 44);
- a crash mid-download or mid-reboot: the agent is killed (nothing cleaned up, a held lock
  stays held) and powered on again `down_for` simulated seconds later;
- a corrupted payload: the node's first payload download gets one byte flipped;
- etcd or the update server away for a while: every node reaches them through a `FaultProxy`
  that is cut at `start` and restored `duration` simulated seconds later.

Every reboot is recorded (`RebootRecord`) together with the semaphore the node read from etcd
right before it: the holders and the key's revision, so the lock history can prove the node held
the lock (`coreroll.fleet.history.check_reboots`). Lock acquisitions and releases are recorded
with their simulated time (`LockSpan`) for the makespan.

Public API:
- `Fleet(base_dir, server_url, etcd_config, scenario, nodes, clock, *, version, image,
  public_key=None, seed=0, report_interval=30.0)`: `async start()`, `async stop()`,
  `snapshot() -> FleetSnapshot`, `async wait_for(predicate, within, poll=0.05)`,
  `all_on(version) -> bool` (active partition holds it and is marked good, on every node),
  `nodes: list[SimNode]`, `reboots: list[RebootRecord]`, `spans: list[LockSpan]`,
  `faults_fired: dict[str, int]`, `etcd` (the shared client), `lock_store`, `start_revision` (the
  first etcd revision of this run: pass it to `read_lock_history`).
- Re-exported: the records `SimNode`, `RebootRecord`, `LockSpan`, `FleetSnapshot`
  (`coreroll.fleet.records`) and the corrupted-payload transport `CorruptOnce`
  (`coreroll.fleet.corrupt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV, open_kv
from coreroll.fleet.corrupt import CorruptOnce
from coreroll.fleet.records import FleetSnapshot, LockSpan, RebootRecord, SimNode
from coreroll.fleet.scenario import NodePlan, Scenario
from coreroll.locks.keys import LOCK_PREFIX
from coreroll.locks.v3store import V3LockStore
from coreroll.node.agent import AgentOptions, NodeAgent, provision_node
from coreroll.node.clock import ScaledClock
from coreroll.node.commandbus import CommandRouter
from coreroll.node.engine_types import EngineSnapshot
from coreroll.node.faultproxy import FaultProxy
from coreroll.node.partitions import Disk, Partition
from coreroll.node.reboot import LockWaiter

__all__ = ["CorruptOnce", "Fleet", "FleetSnapshot", "LockSpan", "RebootRecord", "SimNode"]

log = logging.getLogger(__name__)

_DOWNLOADING = "UPDATE_STATUS_DOWNLOADING"


def _via(url: str, proxy: FaultProxy) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))


class Fleet:
    def __init__(
        self,
        base_dir: Path,
        server_url: str,
        etcd_config: EtcdConfig,
        scenario: Scenario,
        nodes: int,
        clock: ScaledClock,
        *,
        version: str,
        image: bytes,
        public_key: Any = None,
        seed: int = 0,
        report_interval: float = 30.0,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.server_url = server_url
        self.etcd_config = etcd_config
        self.scenario = scenario
        self.count = nodes
        self.clock = clock
        self.version = version
        self.image = image
        self.public_key = public_key
        self.rng = random.Random(seed)
        self.report_interval = report_interval
        self.nodes: list[SimNode] = []
        self.reboots: list[RebootRecord] = []
        self.spans: list[LockSpan] = []
        self.faults_fired: Counter[str] = Counter()
        self.started_at = 0.0
        self.start_revision = 1
        self.etcd: EtcdKV | None = None
        self.lock_store: V3LockStore | None = None
        self.lock_waiter: LockWaiter | None = None
        self.router: CommandRouter | None = None
        self.http: httpx.AsyncClient | None = None
        self.etcd_proxy: FaultProxy | None = None
        self.server_proxy: FaultProxy | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._crashes: set[asyncio.Task[None]] = set()  # injected crashes under way (stop cancels them)
        self._open_spans: dict[str, LockSpan] = {}
        self._watch_faults: set[int] = set()

    # ----- set-up --------------------------------------------------------------------------
    async def _proxy(self, url: str) -> FaultProxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80)
        await proxy.start()
        return proxy

    async def start(self) -> None:
        faults = self.scenario.faults
        etcd_config = self.etcd_config
        server_url = self.server_url
        if faults.etcd_outage:
            self.etcd_proxy = await self._proxy(etcd_config.endpoints[0])
            etcd_config = EtcdConfig(
                endpoints=(_via(etcd_config.endpoints[0], self.etcd_proxy),), timeout=etcd_config.timeout
            )
        if faults.server_outage:
            self.server_proxy = await self._proxy(server_url)
            server_url = _via(server_url, self.server_proxy)
        self.etcd = await open_kv(etcd_config, "v3")
        # etcd's history outlives deleted keys: checks of this run read from here on.
        listing = await self.etcd.get_prefix(LOCK_PREFIX)
        self.start_revision = listing.revision + 1
        self.lock_store = V3LockStore(etcd_config, kv=self.etcd)
        for spec in self.scenario.lock_groups:
            await self.lock_store.set_max(spec.name, spec.max)
        self.lock_waiter = LockWaiter(self.lock_store)
        self.lock_waiter.start()
        self.router = CommandRouter(self.etcd)
        await self.router.start()
        self.http = httpx.AsyncClient(
            timeout=30.0, limits=httpx.Limits(max_connections=256, max_keepalive_connections=128)
        )
        plans = self.scenario.assign(self.count, self.rng)
        for plan in plans:
            self.nodes.append(self._provision(plan, server_url, etcd_config))
        self.started_at = self.clock.now()
        for node in self.nodes:
            await self._power_on(node)
        self._watch_faults = {
            i for i, n in enumerate(self.nodes) if n.plan.die_downloading or n.plan.die_rebooting
        }
        if self._watch_faults:
            self._tasks.append(asyncio.create_task(self._fault_monitor(), name="fleet-faults"))
        for proxy, outage in (
            (self.etcd_proxy, faults.etcd_outage),
            (self.server_proxy, faults.server_outage),
        ):
            if proxy is not None and outage is not None:
                self._tasks.append(asyncio.create_task(self._outage(proxy, *outage)))

    def _provision(self, plan: NodePlan, server_url: str, etcd_config: EtcdConfig) -> SimNode:
        state_dir = self.base_dir / f"node-{plan.index:04d}"
        machine_id = f"{self.rng.getrandbits(128):032x}"
        if Disk.exists(state_dir):
            machine_id = (state_dir / "machine-id").read_text().strip()
            initial = Disk(state_dir, fsync=False).table()[0].version or self.version
        else:
            provision_node(
                state_dir,
                version=self.version,
                image=self.image,
                server=server_url,
                group=plan.channel,
                strategy=plan.strategy,
                lock_group=plan.lock_group,
                machine_id=machine_id,
                window_start=self.scenario.window_start,
                window_length=self.scenario.window_length,
            )
            initial = self.version
        node = SimNode(plan, state_dir, machine_id, initial, etcd_config=etcd_config)
        if plan.corrupt_payload:
            node.http = httpx.AsyncClient(timeout=30.0, transport=CorruptOnce(httpx.AsyncHTTPTransport()))
        return node

    def _options(self, plan: NodePlan) -> AgentOptions:
        spread = self.scenario.spread
        return AgentOptions(
            report_interval=self.report_interval,
            reboot_duration=plan.reboot_duration,
            failed_boot_timeout=spread.failed_boot_timeout,
            timings=spread.timings(),
            download_rate=plan.download_rate,
            hostname=f"node-{plan.index:04d}",
        )

    def _comes_up(self, node: SimNode) -> Callable[[Partition], bool] | None:
        if not node.plan.boot_fails:
            return None

        def comes_up(partition: Partition) -> bool:
            ok = partition.version == node.initial_version
            if not ok:
                self.faults_fired["boot_failure"] += 1
            return ok

        return comes_up

    async def _power_on(self, node: SimNode) -> None:
        assert self.etcd and self.http and self.lock_store and self.router
        agent = NodeAgent(
            node.state_dir,
            self.etcd,
            node.http or self.http,
            self.clock,
            public_key=self.public_key,
            lock_store=self.lock_store,
            lock_waiter=self.lock_waiter,
            router=self.router,
            comes_up=self._comes_up(node),
            options=self._options(node.plan),
            rng=random.Random(self.rng.random()),
            etcd_config=node.etcd_config,
        )
        agent.disk.fsync = False  # a simulated disk: atomic renames are enough
        self._instrument(node, agent)
        node.agent = agent
        await agent.start()

    def _instrument(self, node: SimNode, agent: NodeAgent) -> None:
        """Record lock spans and every reboot with the semaphore read right before it; crash a
        die-downloading node the moment its engine starts downloading (a poll could miss a
        download that lasts milliseconds)."""
        if node.plan.die_downloading and not node.died_downloading:

            def crash_when_downloading(snapshot: EngineSnapshot) -> None:
                if snapshot.status == _DOWNLOADING and not node.died_downloading:
                    node.died_downloading = True
                    self._start_crash(node, "die_downloading")

            agent.engine_observers.append(crash_when_downloading)
        manager = agent.reboot_manager
        chained_event = manager.on_event
        original_reboot = manager.reboot_fn
        store = self.lock_store
        assert store is not None

        def on_event(message: str) -> None:
            now = self.clock.now()
            if message.startswith("Acquired reboot lock"):
                span = LockSpan(node.machine_id, manager.group, now)
                self._open_spans[node.machine_id] = span
                self.spans.append(span)
            elif message.startswith("Unlocked existing lock"):
                span = self._open_spans.pop(node.machine_id, None)
                if span is not None:
                    span.released = now
            if chained_event is not None:
                chained_event(message)

        async def reboot() -> None:
            holders: tuple[str, ...] = ()
            key_revision: int | None = None
            if manager.effective_strategy == "etcd-lock":
                with contextlib.suppress(Exception):
                    sem, key_revision = await store.get(manager.group)
                    holders = tuple(sem.holders)
            upcoming = max(agent.disk.table(), key=lambda p: p.priority)
            self.reboots.append(
                RebootRecord(
                    node.machine_id,
                    manager.group,
                    manager.effective_strategy or manager.strategy,
                    self.clock.now(),
                    holders,
                    key_revision,
                    manager.lock_revision,
                    upcoming.version,
                )
            )
            await original_reboot()

        manager.on_event = on_event
        manager.reboot_fn = reboot

    # ----- faults --------------------------------------------------------------------------
    async def _crash(self, node: SimNode, why: str) -> None:
        agent, node.agent = node.agent, None
        if agent is None:
            return
        self.faults_fired[why] += 1
        node.crashes += 1
        log.info(
            "fleet: %s crashes (%s); power on in %.0fs", node.machine_id, why, self.scenario.faults.down_for
        )
        await agent.kill()
        await self.clock.sleep(self.scenario.faults.down_for)
        await self._power_on(node)

    def _start_crash(self, node: SimNode, why: str) -> None:
        task = asyncio.create_task(self._crash(node, why))
        self._crashes.add(task)
        task.add_done_callback(self._crashes.discard)

    async def _fault_monitor(self) -> None:
        """Crash die-rebooting nodes while they reboot (a reboot lasts long enough to poll for);
        die-downloading nodes are crashed by their engine observer (see `_instrument`)."""
        while self._watch_faults:
            for index in list(self._watch_faults):
                node = self.nodes[index]
                agent = node.agent
                if agent is None:
                    continue
                if node.plan.die_rebooting and not node.died_rebooting:
                    if agent.reboot_manager.state == "rebooting":
                        node.died_rebooting = True
                        self._start_crash(node, "die_rebooting")
                if (node.died_downloading or not node.plan.die_downloading) and (
                    node.died_rebooting or not node.plan.die_rebooting
                ):
                    self._watch_faults.discard(index)
            await asyncio.sleep(0.02)
        if self._crashes:
            await asyncio.gather(*self._crashes, return_exceptions=True)

    async def _outage(self, proxy: FaultProxy, start: float, duration: float) -> None:
        name = "etcd_outage" if proxy is self.etcd_proxy else "server_outage"
        await self.clock.sleep(max(0.0, self.started_at + start - self.clock.now()))
        log.warning("fleet: %s for %.0fs", name, duration)
        await proxy.cut()
        self.faults_fired[name] += 1
        await self.clock.sleep(duration)
        await proxy.restore()
        log.warning("fleet: %s over", name)

    # ----- observing -----------------------------------------------------------------------
    def snapshot(self) -> FleetSnapshot:
        versions: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        holders: Counter[str] = Counter()
        up = good = 0
        for node in self.nodes:
            agent = node.agent
            if agent is None or not agent.up.is_set():
                continue
            up += 1
            active = agent.disk.active
            versions[active.version or "?"] += 1
            good += bool(active.successful)
            if agent.engine is not None:
                statuses[agent.engine.snapshot.status] += 1
        for span in self._open_spans.values():
            holders[span.group] += 1
        now = self.clock.now()
        return FleetSnapshot(
            now,
            now - self.started_at,
            up,
            len(self.nodes),
            dict(versions),
            good,
            dict(statuses),
            dict(holders),
            len(self.reboots),
        )

    def all_on(self, version: str) -> bool:
        return all(node.is_good_on(version) for node in self.nodes)

    async def wait_for(self, predicate: Callable[[], bool], within: float, poll: float = 0.05) -> bool:
        """Poll `predicate` every `poll` real seconds; False after `within` real seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True

    async def stop(self) -> None:
        for task in (*self._tasks, *self._crashes):
            task.cancel()
        for task in (*self._tasks, *self._crashes):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watch_faults.clear()
        await asyncio.gather(
            *(n.agent.stop() for n in self.nodes if n.agent is not None), return_exceptions=True
        )
        for node in self.nodes:
            if node.http is not None:
                await node.http.aclose()
        if self.lock_waiter is not None:
            await self.lock_waiter.stop()
        if self.router is not None:
            await self.router.stop()
        if self.http is not None:
            await self.http.aclose()
        if self.etcd is not None:
            await self.etcd.close()
        for proxy in (self.etcd_proxy, self.server_proxy):
            if proxy is not None:
                await proxy.stop()
