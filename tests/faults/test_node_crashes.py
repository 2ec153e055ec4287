"""Nodes that die at the worst moments, in one rollout (five nodes, one lock group of max 1):
- one is killed mid-download (0 < progress < 1) and powered on again: it resumes or restarts the
  download and ends on the new release;
- one loses power mid-postinstall (the image is written to the other partition, its GPT flags are
  not yet set) and is powered on again: it boots its old, intact partition, downloads again and
  ends on the new release;
- one is killed while it holds the reboot lock and stays dead: the dashboard's model shows it as a
  stale holder (offline), nobody else in the group gets the lock meanwhile, and once an operator
  unlocks it (coreroll.watch.actions, as the dashboard does) the rollout continues.
Afterwards etcd's history shows no group over its max and no reboot without the lock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.fleet.scenario import Faults, LockGroupSpec
from coreroll.fleet.sim import Fleet, SimNode
from coreroll.watch.actions import Actions
from tests.faults.conftest import FAST, NEW, check, check_lock_invariants, make_fleet, record, until, watching
from tests.node.test_engine_support import admin, publish_synthetic

pytestmark = pytest.mark.slow

NODES = 5
GROUP = "db"
IMAGE_SIZE = 256 * 1024
DOWN_FOR = 30.0  # simulated seconds a crashed machine stays off


def engine_status(node: SimNode) -> tuple[str, float]:
    agent = node.agent
    if agent is None or agent.engine is None:
        return "", 0.0
    snap = agent.engine.snapshot
    return snap.status, snap.progress


async def crash_and_restart(fleet: Fleet, node: SimNode, why: str) -> None:
    # Fleet._crash: kill the agent, wait DOWN_FOR simulated seconds, power on (a new boot).
    await fleet._crash(node, why)


def crash_in_postinstall(node: SimNode, fired: list[str], torn: list[tuple[str | None, int, int]]) -> None:
    """The first postinstall on this node loses power half way: the image was written to the
    inactive partition, the flags that would make GRUB try it are not. Raising CancelledError ends
    the engine exactly there; the monitor then kills the whole machine."""
    agent = node.agent
    assert agent is not None
    real = agent.disk.postinstall

    def postinstall(label: str) -> None:
        if not fired:
            fired.append(node.machine_id)
            [written] = [p for p in agent.disk.table() if p.label == label]
            # what the crash leaves on disk: the new image, but not bootable (GRUB will not try it)
            torn.append((written.version, written.tries, written.successful))
            raise asyncio.CancelledError("power lost during postinstall")
        real(label)

    agent.disk.postinstall = postinstall  # type: ignore[method-assign]


async def test_nodes_killed_mid_download_mid_postinstall_and_holding_the_lock(
    clean_etcd: str, update_server: Any, tmp_path: Path
) -> None:
    publish_synthetic(update_server, NEW, channel="stable", image_size=IMAGE_SIZE)
    with admin(update_server) as client:
        assert (
            client.put("/api/v1/groups/stable/policy", json={"update_timeout_seconds": 3}).status_code == 200
        )
    fleet = make_fleet(
        tmp_path, update_server, clean_etcd, NODES,
        groups=(LockGroupSpec(GROUP, 1),),
        spread=dataclasses.replace(FAST, download_rate=(IMAGE_SIZE / 20, IMAGE_SIZE / 10)),  # 10-20 s each
        faults=Faults(down_for=DOWN_FOR),
        time_factor=60,
    )  # fmt: skip
    victims: dict[str, SimNode] = {}
    postinstall_fired: list[str] = []
    postinstall_crashed: list[str] = []
    restarts: list[asyncio.Task[None]] = []

    async def monitor() -> None:
        while True:
            for node in fleet.nodes:
                if node in victims.values() or node.agent is None:
                    continue
                status, progress = engine_status(node)
                if (
                    "download" not in victims
                    and status == "UPDATE_STATUS_DOWNLOADING"
                    and 0.05 < progress < 0.9
                ):
                    victims["download"] = node
                    record("nodes_killed_mid_download")
                    restarts.append(asyncio.create_task(crash_and_restart(fleet, node, "die_downloading")))
                elif (
                    "lock" not in victims
                    and "postinstall" in victims
                    and node.agent.reboot_manager.holds_lock
                    # before its reboot: after it, the post-boot release may be unlocking right now
                    and node.agent.reboot_manager.state in ("reboot-planned", "rebooting")
                ):
                    victims["lock"] = node
                    record("nodes_killed_holding_lock")
                    agent, node.agent = node.agent, None
                    await agent.kill()  # a crash: nothing cleaned up, the lock stays held; it stays off
            post = victims.get("postinstall")
            if post is not None and postinstall_fired and not postinstall_crashed:
                postinstall_crashed.append(post.machine_id)
                record("nodes_killed_mid_postinstall")
                restarts.append(asyncio.create_task(crash_and_restart(fleet, post, "die_postinstall")))
            await asyncio.sleep(0.005)

    async with watching(clean_etcd) as watch:
        await fleet.start()
        watcher = asyncio.create_task(monitor())
        try:
            victims["postinstall"] = fleet.nodes[-1]
            torn: list[tuple[str | None, int, int]] = []
            crash_in_postinstall(fleet.nodes[-1], postinstall_fired, torn)
            await until(lambda: {"download", "lock"} <= set(victims) and postinstall_fired, 60,
                        f"all three crashes ({sorted(victims)}, postinstall {postinstall_fired})")  # fmt: skip
            dead = victims["lock"]
            assert len({n.machine_id for n in victims.values()}) == 3
            assert torn == [(NEW, 0, 0)]  # the torn partition is not bootable: no tries left, never good

            # the dashboard shows the dead holder as stale, offline
            def stale_ids() -> set[str]:
                return {h.machine_id for _, h in watch.pump().stale_holders()}

            try:
                await watch.until(lambda m: dead.machine_id in stale_ids(), 30, "dead holder shown stale")
            except AssertionError as exc:
                row = watch.model.get(dead.machine_id)
                groups = [(g.group, [(h.machine_id[:8], h.stale, h.rebooting, h.online) for h in g.holders])
                          for g in watch.model.lock_groups()]  # fmt: skip
                raise AssertionError(
                    f"{exc}; row online={row and row.online}, lock groups {groups}"
                ) from None
            [(view, holder)] = [
                (v, h) for v, h in watch.model.stale_holders() if h.machine_id == dead.machine_id
            ]
            assert "offline" in (holder.stale_reason or "")
            assert view.group == GROUP
            # nobody else gets the lock while the dead node holds it (60 simulated seconds of waiting)
            spans_before = len(fleet.spans)
            waiting_since = fleet.clock.now()
            await until(lambda: fleet.clock.now() - waiting_since > 60, 10, "60 simulated seconds")
            assert check("no_lock_granted_past_a_dead_holder", [
                f"{s.machine_id} acquired the lock at {s.acquired}" for s in fleet.spans[spans_before:]
            ]) == []  # fmt: skip

            # the operator unlocks it; the rollout goes on for everyone else
            result = await Actions(EtcdConfig(endpoints=(clean_etcd,)), None, None).unlock(
                GROUP, dead.machine_id
            )
            assert result.ok, result.message
            record("operator_unlocks")
            alive = [n for n in fleet.nodes if n is not dead]
            await until(lambda: all(n.is_good_on(NEW) for n in alive), 90,
                        f"every live node on {NEW}: {fleet.snapshot().line()}")  # fmt: skip
            await watch.until(lambda m: dead.machine_id not in stale_ids(), 10, "stale holder gone")

            # the two that crashed mid-update came back and finished
            assert victims["download"].is_good_on(NEW) and victims["postinstall"].is_good_on(NEW)
            assert victims["download"].crashes == 1 and fleet.faults_fired["die_postinstall"] == 1
            await until(lambda: all(s.released is not None for s in fleet.spans if s.machine_id != dead.machine_id),
                        20, "locks released")  # fmt: skip
            await check_lock_invariants(fleet, {GROUP: 1})
            check("crashed_nodes_completed", [n.machine_id for n in victims.values() if n is not dead
                                              and not n.is_good_on(NEW)])  # fmt: skip
        finally:
            watcher.cancel()
            for task in [watcher, *restarts]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await fleet.stop()
