"""Fleet scenarios: who is on which channel and lock group, how fast things go, what breaks.

A `Scenario` is plain data; `Fleet` (coreroll.fleet.sim) turns it into running agents. Every random
choice comes from one seeded `random.Random`, so a scenario with a seed is reproducible.

Public API:
- `LockGroupSpec(name, max, weight=1.0)`: a locksmith group ("" = the default group) and its slot
  limit; nodes are spread over groups in proportion to `weight`.
- `Spread`: the realistic variation between machines (check schedule = update_engine's 7 min +- 5
  first check, 45 min +- 5 after; download rate range in bytes per simulated second; reboot
  duration range in simulated seconds; failed-boot timeout).
- `Faults`: `boot_failure` (fraction of nodes on which any release other than the one they were
  installed with does not come up -> GRUB rolls back), `die_downloading` / `die_rebooting`
  (fraction of nodes that crash once mid-download / mid-reboot, power back after `down_for`
  seconds), `corrupt_payload` (fraction of nodes whose first download gets a flipped byte),
  `etcd_outage` / `server_outage` ((start, duration) in simulated seconds from fleet start, or None).
- `Scenario(name, description, channels: {channel: weight}, lock_groups, strategy, spread, faults,
  window_start=None, window_length=None)`; `scenario.assign(count, rng) -> list[NodePlan]`.
- `NodePlan(index, channel, lock_group, strategy, reboot_duration, download_rate, boot_fails,
  die_downloading, die_rebooting, corrupt_payload)`.
- `SCENARIOS` (name -> Scenario): `stable` (every node on stable, 2 lock groups max 2 and 1: the
  end-to-end test), `mixed` (alpha/beta/stable, 3 lock groups, the demo), `faults` (`mixed` plus
  every fault), `bench` (one channel, 4 lock groups max 5); `get_scenario(name)` raises
  `KeyError` listing the names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from coreroll.node.engine import EngineTimings


@dataclass(frozen=True)
class LockGroupSpec:
    name: str
    max: int
    weight: float = 1.0


@dataclass(frozen=True)
class Spread:
    # update_engine's schedule by default: one source for these numbers, EngineTimings
    first_check: float = EngineTimings.first_check
    first_check_fuzz: float = EngineTimings.first_check_fuzz
    interval: float = EngineTimings.interval
    interval_fuzz: float = EngineTimings.interval_fuzz
    mark_good_delay: float = EngineTimings.mark_good_delay
    download_rate: tuple[float, float] = (2e6, 20e6)  # bytes per simulated second
    reboot_duration: tuple[float, float] = (45.0, 75.0)  # simulated seconds
    failed_boot_timeout: float = 300.0

    def timings(self) -> EngineTimings:
        return replace(
            EngineTimings(),
            first_check=self.first_check,
            first_check_fuzz=self.first_check_fuzz,
            interval=self.interval,
            interval_fuzz=self.interval_fuzz,
            mark_good_delay=self.mark_good_delay,
        )


@dataclass(frozen=True)
class Faults:
    boot_failure: float = 0.0
    die_downloading: float = 0.0
    die_rebooting: float = 0.0
    corrupt_payload: float = 0.0
    down_for: float = 120.0
    etcd_outage: tuple[float, float] | None = None
    server_outage: tuple[float, float] | None = None


@dataclass(frozen=True)
class NodePlan:
    index: int
    channel: str
    lock_group: str
    strategy: str
    reboot_duration: float
    download_rate: float
    boot_fails: bool = False
    die_downloading: bool = False
    die_rebooting: bool = False
    corrupt_payload: bool = False


def _spread_evenly(count: int, weights: dict[str, float]) -> list[str]:
    """Deterministic apportionment (largest remainder) of `count` items over weighted names."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must add up to more than 0")
    exact = {name: count * w / total for name, w in weights.items()}
    counts = {name: int(v) for name, v in exact.items()}
    left = count - sum(counts.values())
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[:left]:
        counts[name] += 1
    out: list[str] = []
    for name, n in counts.items():
        out.extend([name] * n)
    return out


def _pick_disjoint(rng: random.Random, count: int, fractions: list[float]) -> list[set[int]]:
    """One set of node indices per fault; different faults hit different nodes while there are
    nodes enough, so each fault's effect can be seen on its own."""
    order = list(range(count))
    rng.shuffle(order)
    out, at = [], 0
    for fraction in fractions:
        n = round(count * fraction) if fraction > 0 else 0
        out.append({order[(at + i) % count] for i in range(n)} if count else set())
        at += n
    return out


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    channels: dict[str, float] = field(default_factory=lambda: {"stable": 1.0})
    lock_groups: tuple[LockGroupSpec, ...] = (LockGroupSpec("", 1),)
    strategy: str = "etcd-lock"
    spread: Spread = field(default_factory=Spread)
    faults: Faults = field(default_factory=Faults)
    window_start: str | None = None
    window_length: str | None = None

    def assign(self, count: int, rng: random.Random) -> list[NodePlan]:
        channels = _spread_evenly(count, self.channels)
        groups = _spread_evenly(count, {g.name: g.weight for g in self.lock_groups})
        rng.shuffle(channels)
        # Channels are shuffled against the lock-group blocks, so every group mixes channels.
        faults = self.faults
        boot, die_dl, die_rb, corrupt = _pick_disjoint(
            rng,
            count,
            [faults.boot_failure, faults.die_downloading, faults.die_rebooting, faults.corrupt_payload],
        )
        low, high = self.spread.download_rate
        rb_low, rb_high = self.spread.reboot_duration
        return [
            NodePlan(
                index=i,
                channel=channels[i],
                lock_group=groups[i],
                strategy=self.strategy,
                reboot_duration=rng.uniform(rb_low, rb_high),
                download_rate=rng.uniform(low, high),
                boot_fails=i in boot,
                die_downloading=i in die_dl,
                die_rebooting=i in die_rb,
                corrupt_payload=i in corrupt,
            )
            for i in range(count)
        ]

    def group_max(self) -> dict[str, int]:
        return {g.name: g.max for g in self.lock_groups}


SCENARIOS: dict[str, Scenario] = {
    "stable": Scenario(
        "stable",
        "every node on stable; lock groups 'web' (max 2) and 'db' (max 1)",
        lock_groups=(LockGroupSpec("web", 2), LockGroupSpec("db", 1)),
    ),
    "mixed": Scenario(
        "mixed",
        "10% alpha, 20% beta, 70% stable; lock groups 'web' (max 3), 'db' (max 1), default (max 2)",
        channels={"alpha": 0.1, "beta": 0.2, "stable": 0.7},
        lock_groups=(LockGroupSpec("web", 3, 2.0), LockGroupSpec("db", 1, 1.0), LockGroupSpec("", 2, 1.0)),
    ),
    "faults": Scenario(
        "faults",
        "'mixed' plus faults: 5% fail to boot the new release, 5% crash mid-download, 5% mid-reboot, "
        "5% get a corrupted payload; etcd away 10 min at t+20min, server away 10 min at t+40min",
        channels={"alpha": 0.1, "beta": 0.2, "stable": 0.7},
        lock_groups=(LockGroupSpec("web", 3, 2.0), LockGroupSpec("db", 1, 1.0), LockGroupSpec("", 2, 1.0)),
        faults=Faults(
            boot_failure=0.05,
            die_downloading=0.05,
            die_rebooting=0.05,
            corrupt_payload=0.05,
            etcd_outage=(20 * 60.0, 10 * 60.0),
            server_outage=(40 * 60.0, 10 * 60.0),
        ),
    ),
    "bench": Scenario(
        "bench",
        "every node on stable; 4 lock groups of max 5",
        lock_groups=tuple(LockGroupSpec(f"rack-{i}", 5) for i in range(1, 5)),
    ),
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}: choose one of {', '.join(sorted(SCENARIOS))}") from None
