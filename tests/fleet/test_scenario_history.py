"""Scenario assignment (pure) and the lock-history safety checks (against a real etcd)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.etcd.v3kv import AetcdKV
from coreroll.fleet.history import check_capacity, check_reboots, holding_intervals, read_lock_history
from coreroll.fleet.scenario import SCENARIOS, Faults, get_scenario
from coreroll.locks import open_lock_store, semaphore_key


def test_stable_scenario_spreads_nodes_over_its_lock_groups() -> None:
    plans = SCENARIOS["stable"].assign(20, random.Random(1))
    assert Counter(p.lock_group for p in plans) == {"web": 10, "db": 10}
    assert {p.channel for p in plans} == {"stable"}
    assert all(45 <= p.reboot_duration <= 75 for p in plans)
    assert len({round(p.download_rate) for p in plans}) == 20  # every machine its own speed


def test_mixed_channels_and_reproducible() -> None:
    scenario = SCENARIOS["mixed"]
    plans = scenario.assign(100, random.Random(5))
    assert Counter(p.channel for p in plans) == {"alpha": 10, "beta": 20, "stable": 70}
    assert Counter(p.lock_group for p in plans) == {"web": 50, "db": 25, "": 25}
    assert plans == scenario.assign(100, random.Random(5))
    assert plans != scenario.assign(100, random.Random(6))


def test_faults_hit_different_nodes() -> None:
    scenario = replace(SCENARIOS["stable"], faults=Faults(0.1, 0.1, 0.1, 0.1))
    plans = scenario.assign(20, random.Random(2))
    hit = [
        [p.index for p in plans if getattr(p, f)]
        for f in ("boot_fails", "die_downloading", "die_rebooting", "corrupt_payload")
    ]
    assert [len(h) for h in hit] == [2, 2, 2, 2]
    assert len({i for h in hit for i in h}) == 8


def test_unknown_scenario() -> None:
    with pytest.raises(KeyError, match="unknown scenario 'x': choose one of bench, faults, mixed, stable"):
        get_scenario("x")


@dataclass
class Reboot:
    machine_id: str
    group: str
    strategy: str
    key_revision: int | None


async def test_history_checks_catch_violations(clean_etcd: str) -> None:
    config = EtcdConfig(endpoints=(clean_etcd,))
    client = await connect_v3(config)
    store = open_lock_store(config)
    try:
        # etcd keeps the history of earlier tests' (wiped) keys: read from this test's first revision
        start = (await client.get_prefix(b"coreos.com/")).header.revision + 1
        await store.set_max("web", 2)
        r_a = await store.lock("web", "a")
        r_b = await store.lock("web", "b")
        r_unlock_a = await store.unlock("web", "a")
        # someone writes a semaphore by hand with three holders over max 2
        bad = b'{"semaphore":-1,"max":2,"holders":["b","c","d"]}'
        await client.put(semaphore_key("web").encode(), bad)
        events = await read_lock_history(AetcdKV(client), start)
    finally:
        await store.close()
        await client.close()

    assert [e.group for e in events] == ["web"] * len(events)
    problems = check_capacity(events)
    assert len(problems) == 1 and "had 3 holders ['b', 'c', 'd'] over its max 2" in problems[0]
    assert check_capacity(events[:-1], {"web": 1}) != []  # two holders at once while configured for 1
    spans = holding_intervals(events)
    assert spans[("web", "a")] == [(r_a, r_unlock_a)]
    assert spans[("web", "b")] == [(r_b, None)]
    ok = [Reboot("a", "web", "etcd-lock", r_b), Reboot("b", "web", "etcd-lock", r_unlock_a)]
    assert check_reboots(ok, events) == []
    late = Reboot("a", "web", "etcd-lock", r_unlock_a)  # after it had given the lock back
    never = Reboot("z", "web", "etcd-lock", r_b)
    unlocked = Reboot("z", "web", "reboot", None)  # strategy reboot takes no lock: not checked
    problems = check_reboots([late, never, unlocked], events)
    assert len(problems) == 2
    assert problems[0].startswith(
        f"a rebooted at semaphore revision {r_unlock_a} in group web without holding"
    )
