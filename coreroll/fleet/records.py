"""What the fleet simulator keeps about its nodes and reports (`coreroll.fleet.sim` re-exports all).

Public API:
- `SimNode(plan, state_dir, machine_id, initial_version, ...)`: one simulated machine across its
  boots; `agent` is the running `NodeAgent` (None while the machine is down), `crashes`,
  `is_good_on(version)` (up, on `version`, marked good).
- `RebootRecord(machine_id, group, strategy, at, holders, key_revision, lock_revision, version)`:
  a reboot with the semaphore holders and key revision read from etcd right before it.
- `LockSpan(machine_id, group, acquired, released=None)`: a held reboot lock, simulated time.
- `FleetSnapshot(at, elapsed, up, total, versions, good, statuses, holders, reboots)` with
  `line()`: the one-line progress report `coreroll fleet` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from coreroll.etcd.config import EtcdConfig
from coreroll.fleet.scenario import NodePlan
from coreroll.node.agent import NodeAgent

__all__ = ["FleetSnapshot", "LockSpan", "RebootRecord", "SimNode"]


@dataclass(frozen=True)
class RebootRecord:
    machine_id: str
    group: str
    strategy: str
    at: float  # simulated epoch seconds
    holders: tuple[str, ...]
    key_revision: int | None
    lock_revision: int | None
    version: str | None  # the version the node is about to boot


@dataclass
class LockSpan:
    machine_id: str
    group: str
    acquired: float
    released: float | None = None


@dataclass
class SimNode:
    plan: NodePlan
    state_dir: Path
    machine_id: str
    initial_version: str
    agent: NodeAgent | None = None
    crashes: int = 0
    died_downloading: bool = False
    died_rebooting: bool = False
    http: httpx.AsyncClient | None = None  # own client (corrupted-payload fault) or None
    etcd_config: EtcdConfig | None = None

    def is_good_on(self, version: str) -> bool:
        agent = self.agent
        if agent is None or not agent.up.is_set():
            return False
        active = agent.disk.active
        return active.version == version and bool(active.successful)


@dataclass(frozen=True)
class FleetSnapshot:
    at: float
    elapsed: float
    up: int
    total: int
    versions: dict[str, int]
    good: int
    statuses: dict[str, int]
    holders: dict[str, int]
    reboots: int

    def line(self) -> str:
        minutes, seconds = divmod(int(self.elapsed), 60)
        hours, minutes = divmod(minutes, 60)
        versions = " ".join(f"{v}:{n}" for v, n in sorted(self.versions.items()))
        busy = " ".join(
            f"{s.removeprefix('UPDATE_STATUS_').lower()}:{n}"
            for s, n in sorted(self.statuses.items())
            if s != "UPDATE_STATUS_IDLE"
        )
        locks = " ".join(f"{g or '(default)'}:{n}" for g, n in sorted(self.holders.items()))
        return (
            f"t+{hours}h{minutes:02d}m{seconds:02d}s up {self.up}/{self.total} | {versions} | "
            f"good {self.good} | {busy or 'idle'} | locks {locks or '-'} | reboots {self.reboots}"
        )
