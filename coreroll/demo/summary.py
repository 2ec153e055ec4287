"""The end-of-demo summary: nodes per version, rollbacks, reboots, the lock history, the checks.

`async summarize(demo) -> DemoSummary` (call before `demo.stop()`: it reads etcd's history through
the fleet's client); `DemoSummary.ok` is True only if every check of the scenario held;
`DemoSummary.lines()` is what `coreroll demo --headless` prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coreroll.demo import plan
from coreroll.demo.locklog import LockReport, lock_report
from coreroll.demo.scenarios import Check, checks_for

if TYPE_CHECKING:
    from coreroll.demo.system import DemoSystem


@dataclass
class DemoSummary:
    scenario: str
    nodes: int
    time_factor: float
    real_seconds: float
    simulated_seconds: float
    finished: bool
    phase: str
    versions: dict[str, int]
    down: int
    rollbacks: int  # nodes whose disk shows GRUB fell back from an update
    failed_boots: int
    reboots: int
    locks: LockReport
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finished and all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        minutes = self.simulated_seconds / 60
        versions = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items())) or "-"
        if self.down:
            versions += f", down: {self.down}"
        out = [
            f"summary: scenario {self.scenario}, {self.nodes} nodes, x{self.time_factor:g}: "
            f"{self.real_seconds:.0f} s real = {minutes:.0f} min simulated",
            f"  nodes per version: {versions}",
            f"  rollbacks: {self.rollbacks} (failed boots: {self.failed_boots})   reboots: {self.reboots}",
            f"  max lock holders seen / max: {self.locks.line()} ({self.locks.events} lock writes in etcd's history)",
        ]
        if not self.finished:
            out.append(f"  FAIL the scenario did not reach its end: {self.phase}")
        for check in self.checks:
            out.append(f"  {'ok  ' if check.ok else 'FAIL'} {check.text}")
        out.append(f"result: {'PASS' if self.ok else 'FAIL'}")
        return out


async def summarize(demo: DemoSystem) -> DemoSummary:
    fleet = demo.fleet
    if fleet is None or fleet.etcd is None:
        raise RuntimeError("the demo system is not started")
    versions: Counter[str] = Counter()
    down = rollbacks = 0
    for node in fleet.nodes:
        if demo.is_down(node) or node.agent is None:
            down += 1
        else:
            versions[node.agent.disk.active.version or "?"] += 1
            rollbacks += node.agent.disk.rolled_back()
    locks = await lock_report(fleet.etcd, plan.group_max(), fleet.reboots)
    return DemoSummary(
        scenario=demo.options.scenario,
        nodes=len(fleet.nodes),
        time_factor=demo.options.time_factor,
        real_seconds=demo.elapsed_real(),
        simulated_seconds=demo.elapsed_sim(),
        finished=demo.finished,
        phase=demo.phase.text,
        versions=dict(versions),
        down=down,
        rollbacks=rollbacks,
        failed_boots=fleet.faults_fired.get("boot_failure", 0),
        reboots=len(fleet.reboots),
        locks=locks,
        checks=checks_for(demo.options.scenario, demo, locks),
    )
