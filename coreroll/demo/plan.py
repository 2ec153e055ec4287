"""The demo's fleet: channels, lock groups, timings, and which node the scenario breaks.

- `SCENARIO_NAMES`: `rollout`, `bad-release`, `stuck-lock`.
- `LOCK_GROUPS`: the default group (max 2, half the nodes), `lb` (max 1) and `db` (max 1).
- `CHANNELS`: alpha 20 %, beta 30 %, stable 50 % of the nodes.
- `DEMO_SPREAD`: update_engine's schedule shortened (first check 30 s +- 20, then every
  4 min +- 1) and quick reboots, so a rollout of 60 nodes at x60 takes about half a minute of real
  time while each step stays visible.
- `describe_groups()`: `default 2, lb 1, db 1`, the lock maxes in one line.
- `fleet_scenario(name) -> DemoFleetScenario`: a `coreroll.fleet.scenario.Scenario` whose
  `assign()` pins the scenario's fault on chosen nodes instead of a random fraction, so even a
  small fleet shows it: `bad-release` makes every other alpha node unable to boot any release but
  the one it was installed with (rollback); `stuck-lock` makes one `db` node (an alpha one when
  there is one) crash while rebooting with the lock held, and stay down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from coreroll.fleet.scenario import Faults, LockGroupSpec, NodePlan, Scenario, Spread

SCENARIO_NAMES = ("rollout", "bad-release", "stuck-lock")
CHANNEL_ORDER = ("alpha", "beta", "stable")
CHANNELS = {"alpha": 0.2, "beta": 0.3, "stable": 0.5}
LOCK_GROUPS = (LockGroupSpec("", 2, 2.0), LockGroupSpec("lb", 1, 1.0), LockGroupSpec("db", 1, 1.0))
STUCK_GROUP = "db"
VICTIM_REBOOT = 600.0  # simulated seconds
DOWN_FOREVER = 10 * 365 * 86400.0  # simulated seconds: the dead node does not come back

DEMO_SPREAD = Spread(
    first_check=30.0,
    first_check_fuzz=20.0,
    interval=240.0,
    interval_fuzz=60.0,
    mark_good_delay=20.0,
    download_rate=(1.5e3, 6e3),  # bytes per simulated second: a 64 KiB payload takes 10-45 s
    reboot_duration=(20.0, 40.0),
    failed_boot_timeout=60.0,
)

DESCRIPTIONS = {
    "rollout": "a new release goes out through alpha -> beta -> stable under the reboot locks",
    "bad-release": "a release that does not boot on some alpha nodes: they roll back, safe mode halts alpha",
    "stuck-lock": "a db node takes the reboot lock and dies; its group waits until the lock is freed",
}


@dataclass(frozen=True)
class DemoFleetScenario(Scenario):
    pin: str = "rollout"

    def assign(self, count: int, rng: random.Random) -> list[NodePlan]:
        plans = super().assign(count, rng)
        if self.pin == "bad-release":
            alpha = [p.index for p in plans if p.channel == "alpha"]
            failing = set(alpha[::2])
            plans = [replace(p, boot_fails=p.index in failing) for p in plans]
        elif self.pin == "stuck-lock":
            victim = pick_victim(plans)
            if victim is not None:
                # a long reboot, so the fleet's fault monitor (it polls) surely sees it rebooting
                plans = [
                    replace(p, die_rebooting=True, reboot_duration=VICTIM_REBOOT) if p.index == victim else p
                    for p in plans
                ]
        return plans


def pick_victim(plans: list[NodePlan]) -> int | None:
    """The `db` node that will die holding the lock: the earliest channel's first one."""
    in_group = [p for p in plans if p.lock_group == STUCK_GROUP]
    if not in_group:
        return None
    return min(in_group, key=lambda p: (CHANNEL_ORDER.index(p.channel), p.index)).index


def fleet_scenario(name: str) -> DemoFleetScenario:
    if name not in SCENARIO_NAMES:
        raise ValueError(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIO_NAMES)}")
    faults = Faults(down_for=DOWN_FOREVER) if name == "stuck-lock" else Faults()
    return DemoFleetScenario(
        name=f"demo-{name}",
        description=DESCRIPTIONS[name],
        channels=dict(CHANNELS),
        lock_groups=LOCK_GROUPS,
        strategy="etcd-lock",
        spread=DEMO_SPREAD,
        faults=faults,
        pin=name,
    )


def group_max() -> dict[str, int]:
    return {g.name: g.max for g in LOCK_GROUPS}


def describe_groups() -> str:
    """`default 2, lb 1, db 1`: how many nodes of each lock group may reboot at once."""
    return ", ".join(f"{g.name or 'default'} {g.max}" for g in LOCK_GROUPS)
