"""The demo's scripts (what happens, in simulated time) and the invariants each must keep.

- `rollout`: publish `NEW_VERSION` (signed by the server) to alpha; when every alpha node runs it
  and it has soaked `soak` simulated seconds, promote it to beta, then to stable. The reboot locks
  pace the reboots. With `repeat`, the next release follows ten simulated minutes later.
  Checks: every node runs the new version (booted and marked good); no lock group over its max;
  every reboot held its group's lock.
- `bad-release`: alpha gets safe mode; the new release does not boot on every other alpha node
  (`coreroll.demo.plan`), GRUB falls back (a rollback), the node's next check reports error 44
  and safe mode halts alpha; the release is never promoted. Checks: at least one rollback, alpha
  halted, no beta/stable node on the new version, the lock checks.
- `stuck-lock`: the rollout, but one `db` node dies while rebooting with the `db` lock held. The
  script waits until the lock is freed (by the operator's `u` on the dashboard, or by the demo
  itself after `auto_unlock_after` simulated seconds, through the same `Actions.unlock`), then the
  rollout goes on. Checks: the node died holding the lock, the stale holder was visible (holder
  with no alive key), the lock was freed, every live node runs the new version, the lock checks.

Public API: `script_for(name) -> async (DemoSystem) -> None`, `checks_for(name, demo, locks)
-> list[Check]`, `Check(text, ok)`, `next_version(v)`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coreroll.demo import plan
from coreroll.demo.locklog import LockReport
from coreroll.node.nodestatus import alive_key

if TYPE_CHECKING:
    from coreroll.demo.system import DemoSystem

Script = Callable[["DemoSystem"], Awaitable[None]]
NEXT_RELEASE_AFTER = 600.0  # simulated seconds between two rollouts with `repeat`


@dataclass(frozen=True)
class Check:
    text: str
    ok: bool


def next_version(version: str) -> str:
    head, _, last = version.rpartition(".")
    return f"{head}.{int(last) + 1}" if last.isdigit() else f"{version}.1"


def _lock_policy() -> str:
    return plan.describe_groups()


async def roll_out(demo: DemoSystem, version: str, held: Callable[[], bool] = lambda: False) -> None:
    """Publish `version` to alpha, then promote it channel by channel once the previous one is done.

    While `held()` is true another task owns the phase line (stuck-lock's), so this one stays quiet.
    """
    demo.ensure_running()
    assert demo.admin is not None

    def say(name: str, text: str) -> None:
        if not held():
            demo.set_phase(name, text)

    say("publish", f"publishing {version}: the server signs it and points alpha at it")
    await demo.admin.publish_synthetic(version, "alpha", demo.options.image_size)
    for index, channel in enumerate(plan.CHANNEL_ORDER):
        nodes = demo.in_channel(channel)
        if index:
            await demo.admin.promote(version, channel)
        verb = "published to" if index == 0 else "promoted to"
        while not demo.done_on(version, nodes):
            say(
                channel,
                f"{version} {verb} {channel}: its {len(nodes)} nodes check, download, verify and "
                f"reboot under the locks ({_lock_policy()} at a time)",
            )
            await asyncio.sleep(0.1)
        if index + 1 < len(plan.CHANNEL_ORDER) and demo.options.soak > 0:
            following = plan.CHANNEL_ORDER[index + 1]
            say(
                f"{channel}-soak",
                f"all {channel} nodes run {version}; it soaks {demo.options.soak / 60:g} min "
                f"before it is promoted to {following}",
            )
            await demo.sim_sleep(demo.options.soak)


async def rollout(demo: DemoSystem) -> None:
    version = demo.versions[1]
    while True:
        await roll_out(demo, version)
        up = [n for n in demo.nodes if not demo.is_down(n)]
        done = f"rollout complete: all {len(up)} nodes run {version}"
        if not demo.options.repeat:
            demo.set_phase("done", done)
            return
        following = next_version(version)
        demo.set_phase("done", f"{done}; next release {following} in {NEXT_RELEASE_AFTER / 60:g} min")
        await demo.sim_sleep(NEXT_RELEASE_AFTER)
        demo.versions = (version, following)
        version = following


async def bad_release(demo: DemoSystem) -> None:
    demo.ensure_running()
    assert demo.admin is not None and demo.fleet is not None
    fleet = demo.fleet
    old, new = demo.versions
    alpha = demo.in_channel("alpha")
    failing = [n for n in alpha if n.plan.boot_fails]
    await demo.admin.set_policy("alpha", {"safe_mode": True})
    demo.set_phase(
        "safe-mode", "alpha's rollout policy is now safe mode: one canary first; any failure halts the group"
    )
    await demo.admin.publish_synthetic(new, "alpha", demo.options.image_size)
    demo.set_phase(
        "alpha",
        f"{new} published to alpha ({len(alpha)} nodes); it will not boot on {len(failing)} of them",
    )
    await demo.until(lambda: fleet.faults_fired.get("boot_failure", 0) > 0)
    demo.set_phase(
        "boot-failed",
        f"{new} did not come up on a node; after {plan.DEMO_SPREAD.failed_boot_timeout:g} s GRUB "
        f"falls back to {old} (the tries are used up)",
    )

    def rolled_back() -> list[str]:
        return [
            demo.name_of(n)
            for n in failing
            if n.agent is not None and n.agent.up.is_set() and n.agent.disk.rolled_back()
        ]

    await demo.until(lambda: bool(rolled_back()))
    demo.facts["rolled_back"] = rolled_back()
    demo.set_phase(
        "rollback",
        f"rollback: {', '.join(rolled_back())} booted {old} again; its next update check reports "
        "error 44 (RollbackError) to the server",
    )
    reason = None
    while reason is None:
        group = await demo.admin.group("alpha")
        reason = group.get("halted_reason")
        if reason is None:
            await asyncio.sleep(0.2)
    demo.facts["halted_reason"] = reason
    culprit = next((demo.name_of(n) for n in alpha if n.machine_id in str(reason)), "a node")
    demo.set_phase(
        "halted",
        f"safe mode halted alpha: {culprit} reported the rollback (error 44). {new} is not promoted: "
        f"beta and stable stay on {old}",
    )
    # the nodes already granted the release finish their failed boot and fall back too
    await demo.until(lambda: all(n.agent is not None and n.agent.up.is_set() for n in failing))
    demo.facts["rolled_back"] = rolled_back()


async def stuck_lock(demo: DemoSystem) -> None:
    demo.ensure_running()
    assert demo.fleet is not None
    fleet = demo.fleet
    assert fleet.lock_store is not None and fleet.etcd is not None  # ensure_running started them
    new = demo.versions[1]
    victim = next((n for n in demo.nodes if n.plan.die_rebooting), None)
    if victim is None:  # a fleet too small for a db node: just the rollout
        await rollout(demo)
        return
    name, group, label = demo.name_of(victim), victim.plan.lock_group, victim.plan.lock_group or "default"
    state = {"stuck": False, "freed": False}
    rolling = asyncio.create_task(roll_out(demo, new, lambda: state["stuck"] and not state["freed"]))
    try:
        await demo.until(lambda: victim.died_rebooting or rolling.done())
        if rolling.done():
            await rolling
            return
        demo.facts["victim"] = victim.machine_id
        sem, _ = await fleet.lock_store.get(group)
        demo.facts["died_holding"] = victim.machine_id in sem.holders
        state["stuck"] = True
        demo.set_phase(
            "stuck",
            f"{name} took the {label} reboot lock and died while rebooting: {label} (max 1) is stuck. "
            "The lock panel flags the stale holder; select it and press u",
        )
        unlocker: asyncio.Task[None] | None = None
        while True:  # until the lock is freed, by whoever frees it
            sem, revision = await fleet.lock_store.get(group)
            if victim.machine_id not in sem.holders:
                break
            if not demo.facts.get("stale_seen"):
                alive = await fleet.etcd.get(alive_key(victim.machine_id))
                if alive is None:  # what the dashboard flags: a holder that is not alive
                    demo.facts["stale_seen"] = True
                    if demo.options.auto_unlock_after is not None:
                        unlocker = asyncio.create_task(_unlock_later(demo, group, victim.machine_id, name))
            await asyncio.sleep(0.1)
        if unlocker is not None:
            if demo.facts.get("unlocking"):
                await unlocker  # it freed the lock: let it write its audit record
            else:
                unlocker.cancel()  # someone else freed it first
                await asyncio.gather(unlocker, return_exceptions=True)
        state["freed"] = True
        demo.facts["freed"] = True
        demo.facts["freed_revision"] = revision
        demo.set_phase("freed", f"{name}'s {label} lock was released; the rollout continues")
        await rolling
    finally:
        if not rolling.done():
            rolling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rolling
    live = [n for n in demo.nodes if not demo.is_down(n)]
    demo.set_phase("done", f"rollout complete: {len(live)} nodes run {new}; {name} is still down")


async def _unlock_later(demo: DemoSystem, group: str, holder: str, name: str) -> None:
    """What an operator does with `u` some time after the holder went stale: the dashboard's own
    action (CAS + audit record)."""
    from coreroll.watch.actions import Actions

    assert demo.options.auto_unlock_after is not None
    await demo.sim_sleep(demo.options.auto_unlock_after)
    demo.facts["unlocking"] = True
    demo.set_phase("unlock", f"the operator releases {name}'s {group or 'default'} lock")
    result = await Actions(demo.etcd_config, demo.server_url, demo.token, by="coreroll-demo").unlock(
        group, holder
    )
    demo.facts["unlock_result"] = result.message
    if not result.ok and "no longer holds" not in result.message:
        raise RuntimeError(f"the demo could not free the lock: {result.message}")


SCRIPTS: dict[str, Script] = {"rollout": rollout, "bad-release": bad_release, "stuck-lock": stuck_lock}


def script_for(name: str) -> Script:
    try:
        return SCRIPTS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}: choose one of {', '.join(SCRIPTS)}") from None


def _lock_checks(locks: LockReport) -> list[Check]:
    over = "; ".join(locks.capacity_problems[:3])
    bad = "; ".join(locks.reboot_problems[:3])
    return [
        Check(f"no lock group over its max ({locks.line()})" + (f": {over}" if over else ""), not over),
        Check("every reboot held its group's lock" + (f": {bad}" if bad else ""), not bad),
    ]


def checks_for(name: str, demo: DemoSystem, locks: LockReport) -> list[Check]:
    old, new = demo.versions
    nodes = demo.nodes
    live = [n for n in nodes if not demo.is_down(n)]
    on_new = sum(n.is_good_on(new) for n in live)
    checks: list[Check] = []
    if name == "rollout":
        checks.append(
            Check(f"every node runs {new}, marked good ({on_new}/{len(nodes)})", on_new == len(nodes))
        )
    elif name == "bad-release":
        rollbacks = demo.fleet.faults_fired.get("boot_failure", 0) if demo.fleet else 0
        rolled = demo.facts.get("rolled_back") or []
        checks.append(
            Check(
                f"rollbacks happened ({rollbacks} failed boots; back on {old}: {len(rolled)})", bool(rolled)
            )
        )
        reason = demo.facts.get("halted_reason")
        checks.append(Check(f"safe mode halted alpha ({reason or 'not halted'})", reason is not None))
        later = [n for n in nodes if n.plan.channel != "alpha"]
        leaked = [
            demo.name_of(n) for n in later if n.agent is not None and n.agent.disk.active.version == new
        ]
        checks.append(
            Check(f"{new} never reached beta or stable ({len(later)} nodes still on {old})", not leaked)
        )
    elif name == "stuck-lock":
        if "victim" in demo.facts:
            checks.append(Check("a db node died holding the db lock", bool(demo.facts.get("died_holding"))))
            checks.append(
                Check(
                    "the dead holder was stale (holder with no alive key)", bool(demo.facts.get("stale_seen"))
                )
            )
            checks.append(Check("the stale lock was freed", bool(demo.facts.get("freed"))))
        checks.append(
            Check(f"every live node runs {new}, marked good ({on_new}/{len(live)})", on_new == len(live))
        )
    return checks + _lock_checks(locks)
