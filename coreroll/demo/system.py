"""`DemoSystem`: everything `coreroll demo` runs, with the real parts, on one machine.

    system = DemoSystem(DemoOptions(nodes=60, time_factor=60, scenario="rollout"), on_phase=print)
    await system.start()          # etcd, server, releases, fleet; says what it waits for
    finished = await system.run(script_for(system.options.scenario), duration=60)  # True: got to its end
    summary = await system.summary()           # versions, rollbacks, lock history, checks
    await system.stop()           # everything it started stops; temp files go unless keep=DIR

What it starts (in this order, each reported through `on_progress`):
1. an embedded etcd (`coreroll.etcd.launcher.EmbeddedEtcd`) under `<base>/etcd`;
2. the update server (`coreroll.server.runner.run_server_in_thread`) on a fresh SQLite file under
   `<base>/server`, with a fresh signing key (`write_keypair`) and admin token, on the same
   simulated clock as the nodes;
3. the first release (`INITIAL_VERSION`), published and promoted alpha -> beta -> stable;
4. the fleet (`coreroll.fleet.sim.Fleet`) of `nodes` agents on a `ScaledClock(time_factor)`,
   spread over the channels and lock groups of `coreroll.demo.plan` (the fleet sets the lock
   maxes with the lock store before any node starts).
`<base>` is a temporary directory removed by `stop()`, or `keep` (kept).

`run(script)` drives the scenario (`script_for` in `coreroll.demo.scenarios`: the caller picks it,
so this module never imports the scripts that drive it). While it runs, `phase` says what the
scenario is doing now, and `on_phase(Phase)` is called (from the system's event loop) each time it
changes. `facts` collects what the scenario observed (for its checks).

Public API: `DemoOptions`, `Phase(name, text, elapsed)`, `DemoSystem` (attributes `options`,
`clock`, `etcd_endpoint`, `etcd_config`, `server_url`, `token`, `base_dir`, `fleet`, `admin`,
`phase`, `facts`, `versions` (old, new)), `INITIAL_VERSION`, `NEW_VERSION`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreroll.demo import plan
from coreroll.demo.admin import ServerAdmin
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.fleet.sim import Fleet, SimNode
from coreroll.node.clock import ScaledClock
from coreroll.omaha.payload import load_public_key, write_keypair
from coreroll.server.releases import synthetic_image
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings

log = logging.getLogger(__name__)

INITIAL_VERSION = "3815.2.0"
NEW_VERSION = "3815.2.1"
PUBLIC_KEY = "update-payload-key.pub.pem"
FLEET_STOP_TIMEOUT = 20.0  # real seconds


@dataclass(frozen=True)
class DemoOptions:
    nodes: int = 60
    time_factor: float = 60.0
    scenario: str = "rollout"
    keep: Path | None = None  # keep all state under this directory
    seed: int = 1
    repeat: bool = False  # rollout: publish the next release after each completes (the dashboard)
    auto_unlock_after: float | None = None  # stuck-lock: simulated s before the demo frees the lock itself
    report_interval: float = 5.0  # real seconds between node status heartbeats
    image_size: int = 65536
    soak: float = 120.0  # simulated seconds a channel runs the release before it is promoted

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"nodes must be at least 1, not {self.nodes}")
        if self.time_factor <= 0:
            raise ValueError(f"time factor must be > 0, not {self.time_factor}")
        plan.fleet_scenario(self.scenario)  # raises ValueError naming the scenarios


@dataclass(frozen=True)
class Phase:
    name: str
    text: str
    elapsed: float = 0.0  # simulated seconds since the fleet started

    def line(self) -> str:
        minutes, seconds = divmod(int(self.elapsed), 60)
        return f"[t+{minutes:3d}m{seconds:02d}s] {self.text}"


class DemoSystem:
    def __init__(
        self,
        options: DemoOptions,
        *,
        on_phase: Callable[[Phase], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.on_phase = on_phase
        self.on_progress = on_progress
        self.clock = ScaledClock(options.time_factor)
        self.phase = Phase("starting", "starting")
        self.facts: dict[str, Any] = {}
        self.versions: tuple[str, str] = (INITIAL_VERSION, NEW_VERSION)
        self.base_dir: Path | None = None
        self.etcd: EmbeddedEtcd | None = None
        self.etcd_endpoint = ""
        self.etcd_config = EtcdConfig()
        self.server: RunningServer | None = None
        self.server_url = ""
        self.token = ""
        self.admin: ServerAdmin | None = None
        self.fleet: Fleet | None = None
        self.started_real = time.monotonic()
        self.finished = False
        self._stopped = False
        self._log_handler: logging.Handler | None = None
        self._log_level = logging.NOTSET

    # -- phases ------------------------------------------------------------------------------
    def set_phase(self, name: str, text: str) -> None:
        started = (
            self.fleet.started_at if self.fleet is not None and self.fleet.started_at else self.clock.now()
        )
        phase = Phase(name, text, max(0.0, self.clock.now() - started))
        if phase.text == self.phase.text:
            return
        self.phase = phase
        if self.on_phase is not None:
            try:
                self.on_phase(phase)
            except Exception:  # a broken listener must not stop the scenario
                log.exception("demo: phase listener failed")

    def _progress(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(text)

    # -- start / stop ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every part; on failure, stop what did start and raise."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        opts = self.options
        if opts.keep is not None:
            self.base_dir = await asyncio.to_thread(_make_dir, Path(opts.keep))
        else:
            self.base_dir = Path(tempfile.mkdtemp(prefix="coreroll-demo-"))
        base = self.base_dir
        self._log_to(base / "demo.log")
        self.set_phase("starting", "starting etcd, the update server and the fleet")

        self._progress(f"waiting for the embedded etcd to be healthy (data in {base / 'etcd'}) ...")
        self.etcd = EmbeddedEtcd(data_dir=base / "etcd")
        await asyncio.to_thread(self.etcd.start)
        self.etcd_endpoint = self.etcd.endpoint
        self.etcd_config = EtcdConfig(endpoints=(self.etcd_endpoint,))
        self._progress(f"etcd is up at {self.etcd_endpoint}")

        # the server keeps simulated time too, so its times and the nodes' agree on the dashboard
        settings = ServerSettings(data_dir=base / "server", clock=self.clock.now)
        if not (settings.key_dir / PUBLIC_KEY).exists():
            await asyncio.to_thread(write_keypair, settings.key_dir)
        public_key = await asyncio.to_thread(load_public_key, settings.key_dir / PUBLIC_KEY)
        self._progress(f"waiting for the update server to answer (SQLite {settings.database_url}) ...")
        self.server = await asyncio.to_thread(run_server_in_thread, settings)
        self.server_url, self.token = self.server.url, self.server.token
        self.admin = ServerAdmin(self.server_url, self.token)
        self._progress(f"update server is up at {self.server_url} (admin token in {settings.token_path})")

        old, _ = self.versions
        self._progress(f"publishing release {old} (signed) and promoting it alpha -> beta -> stable ...")
        await self.admin.publish_synthetic(old, "alpha", opts.image_size)
        await self.admin.promote(old, "beta")
        await self.admin.promote(old, "stable")

        self.fleet = Fleet(
            base / "fleet",
            self.server_url,
            self.etcd_config,
            plan.fleet_scenario(opts.scenario),
            opts.nodes,
            self.clock,
            version=old,
            image=synthetic_image(old, opts.image_size),
            public_key=public_key,
            seed=opts.seed,
            report_interval=opts.report_interval,
        )
        self._progress(f"booting {opts.nodes} nodes on {old} (x{opts.time_factor:g} time) ...")
        await self.fleet.start()
        up = await self.fleet.wait_for(
            lambda: self.fleet is not None and self.fleet.snapshot().up == opts.nodes, 60
        )
        if not up:
            raise RuntimeError(f"the fleet did not come up within 60 s: {self.fleet.snapshot().line()}")
        self._progress(f"{opts.nodes} nodes are up")
        self.started_real = time.monotonic()

    def _log_to(self, path: Path) -> None:
        """Every part's log goes to `<base>/demo.log`: nothing may scribble over the dashboard."""
        root, ours = logging.getLogger(), logging.getLogger("coreroll")
        self._log_handler = logging.FileHandler(path, encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._log_handler.addFilter(_quiet_http)
        self._log_level = ours.level
        root.addHandler(self._log_handler)  # warnings from anything; info from coreroll.*
        if ours.getEffectiveLevel() > logging.INFO:
            ours.setLevel(logging.INFO)

    def _close_log(self) -> None:
        handler, self._log_handler = self._log_handler, None
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            logging.getLogger("coreroll").setLevel(self._log_level)
            handler.close()

    async def stop(self) -> None:
        """Stop everything this system started (idempotent); remove its files unless `keep`."""
        if self._stopped:
            return
        self._stopped = True
        if self.fleet is not None:
            try:
                # bounded: an agent that never finishes stopping must not keep etcd and the server up
                async with asyncio.timeout(FLEET_STOP_TIMEOUT):
                    await self.fleet.stop()
            except TimeoutError:
                log.warning("demo: the fleet did not stop within %s s", FLEET_STOP_TIMEOUT)
                self._progress(
                    f"the fleet did not stop within {FLEET_STOP_TIMEOUT:g} s; stopping the rest anyway"
                )
            except Exception:
                log.exception("demo: stopping the fleet failed")
        if self.admin is not None:
            with contextlib.suppress(Exception):
                await self.admin.aclose()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
        if self.etcd is not None:
            await asyncio.to_thread(self.etcd.stop, keep_data=True)
        self._close_log()
        if self.base_dir is not None and self.options.keep is None:
            await asyncio.to_thread(shutil.rmtree, self.base_dir, True)

    # -- running the scenario ----------------------------------------------------------------
    async def run(
        self, script: Callable[[DemoSystem], Awaitable[None]], duration: float | None = None
    ) -> bool:
        """Run the scenario's script; True when it reached its end within `duration` real seconds."""
        try:
            if duration is None:
                await script(self)
            else:
                async with asyncio.timeout(duration):
                    await script(self)
        except TimeoutError:
            self.set_phase("timeout", f"stopped after {duration:g} s: {self.phase.text}")
            return False
        self.finished = True
        return True

    # -- helpers for the scripts -------------------------------------------------------------
    @property
    def nodes(self) -> list[SimNode]:
        return list(self.fleet.nodes) if self.fleet is not None else []

    def in_channel(self, channel: str) -> list[SimNode]:
        return [n for n in self.nodes if n.plan.channel == channel]

    @staticmethod
    def is_down(node: SimNode) -> bool:
        """Crashed and not powered on again."""
        return node.agent is None and node.crashes > 0

    def done_on(self, version: str, nodes: list[SimNode]) -> bool:
        return all(n.is_good_on(version) for n in nodes if not self.is_down(n))

    async def until(self, predicate: Callable[[], bool], poll: float = 0.1) -> None:
        """Wait (no deadline: `run(duration)` bounds the whole script) until `predicate()`."""
        while True:  # polls the fleet's in-memory state: there is no event to wait on
            if predicate():
                return
            await asyncio.sleep(poll)

    async def sim_sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def elapsed_real(self) -> float:
        return time.monotonic() - self.started_real

    def elapsed_sim(self) -> float:
        fleet = self.fleet
        return self.clock.now() - fleet.started_at if fleet is not None and fleet.started_at else 0.0

    def name_of(self, node: SimNode) -> str:
        return f"node-{node.plan.index:04d}"

    def ensure_running(self) -> None:
        if self.fleet is None or self.admin is None:
            raise RuntimeError("the demo system is not started")


def _quiet_http(record: logging.LogRecord) -> bool:
    """One line per HTTP request would drown the log: keep only their warnings."""
    return record.levelno >= logging.WARNING or not record.name.startswith(("httpx", "httpcore"))


def _make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


__all__ = ["INITIAL_VERSION", "NEW_VERSION", "DemoOptions", "DemoSystem", "Phase"]
