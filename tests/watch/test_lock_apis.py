"""The dashboard's lock source and action layer with `--etcd-api auto` (the default): semaphores
that Flatcar's locksmithd keeps in etcd's v2 keyspace, coreroll's in v3, both at once, and an
explicit v2 on an etcd that does not serve it."""

from __future__ import annotations

import json
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.locks.keys import LOCK_PREFIX, semaphore_key
from coreroll.watch.actions import Actions
from coreroll.watch.views import CONNECTED, DOWN
from coreroll.wire.keys import airlock_group_key
from tests.locks.rawetcd import (
    LOCKSMITHD_INITIAL,
    locksmithd_lock,
    raw_get,
    raw_keys,
    raw_put,
)
from tests.watch.test_etcd_source import Running

MID = "69d27b356a94476da859461d3a3bc6fd"
OTHER = "0123456789abcdef0123456789abcdef"


def holders(model: Any, group: str, kind: str) -> list[str] | None:
    view = model.lock_group(group, kind)
    return None if view is None else [h.machine_id for h in view.holders]


async def test_auto_shows_locksmithds_v2_semaphore_and_v3_ones_appearing_later(clean_etcd: str) -> None:
    locksmithd_lock(clean_etcd, MID)
    run = Running(clean_etcd, api="auto")
    try:
        await run.until(lambda m: holders(m, "", "v2") == [MID], what="locksmithd's holder (v2)")
        assert run.model.lock_apis_watched == {"v2", "v3"} and run.model.locks.apis_holding == {"v2"}
        raw_put(clean_etcd, "v3", semaphore_key(""), LOCKSMITHD_INITIAL)  # same group, the other API
        await run.until(lambda m: m.lock_group("", "v3") is not None, what="the v3 semaphore")
        views = run.model.lock_groups()
        assert [(v.ref, v.available, [h.machine_id for h in v.holders]) for v in views] == [
            (("v2", ""), 0, [MID]),
            (("v3", ""), 1, []),
        ]
        notes = [e.message for _, e in run.model.activity_after(0) if e.kind == "Locks"]
        assert notes == [
            "reboot-lock semaphores exist in both etcd APIs (v2 and v3, marked in the lock panel); "
            "Flatcar's locksmithd reads only v2"
        ]
    finally:
        await run.close()


async def test_auto_with_no_semaphore_yet_watches_both_apis(clean_etcd: str) -> None:
    run = Running(clean_etcd, api="auto")
    try:
        await run.until(lambda m: m.connections["etcd"].status == CONNECTED, what="connected")
        assert run.model.lock_apis_watched == {"v2", "v3"} and not run.model.lock_groups()
        locksmithd_lock(clean_etcd, MID, group="lb")  # locksmithd's first start, later
        await run.until(lambda m: holders(m, "lb", "v2") == [MID], what="the new v2 group")
        raw_put(clean_etcd, "v3", semaphore_key("db"), LOCKSMITHD_INITIAL)
        await run.until(lambda m: m.lock_group("db", "v3") is not None, what="the new v3 group")
    finally:
        await run.close()


async def test_explicit_v2_on_an_etcd_without_it_is_down_naming_the_flag(clean_etcd_without_v2: str) -> None:
    run = Running(clean_etcd_without_v2, api="v2")
    try:
        await run.until(lambda m: m.connections["etcd"].status == DOWN, what="etcd shown down")
        detail = run.model.connections["etcd"].detail
        assert detail.startswith(f"--etcd-api v2 cannot work here: etcd at {clean_etcd_without_v2} does not")
        assert detail.endswith("use --etcd-api auto (or v3)")
    finally:
        await run.close()


async def test_auto_on_an_etcd_without_v2_watches_v3(clean_etcd_without_v2: str) -> None:
    raw_put(clean_etcd_without_v2, "v3", semaphore_key("db"), LOCKSMITHD_INITIAL)
    run = Running(clean_etcd_without_v2, api="auto")
    try:
        await run.until(lambda m: m.lock_group("db", "v3") is not None, what="the v3 group")
        assert run.model.connections["etcd"].status == CONNECTED
        assert run.model.lock_apis_watched == {"v3"}
    finally:
        await run.close()


async def test_unlock_and_set_max_write_where_the_semaphore_lives(clean_etcd: str) -> None:
    locksmithd_lock(clean_etcd, MID)
    actions = Actions(EtcdConfig(endpoints=(clean_etcd,), api="auto"), None, None, by="ops@bastion")
    assert (await actions.set_max("", 2, "v2")).ok
    result = await actions.unlock("", MID, "v2")
    assert result.ok, result.message
    assert raw_get(clean_etcd, "v2", semaphore_key()) == b'{"semaphore":2,"max":2,"holders":[]}'
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []
    # no API given (a node row's own group): auto finds it on v2 too
    locksmithd_lock(clean_etcd, OTHER)
    assert (await actions.unlock("", OTHER)).ok
    assert json.loads(raw_get(clean_etcd, "v2", semaphore_key()) or b"")["holders"] == []
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []


async def test_airlock_semaphores_are_never_written(clean_etcd: str) -> None:
    key = airlock_group_key("workers")
    raw_put(clean_etcd, "v3", key, b'{"total_slots":1,"holders":["n1"]}')
    actions = Actions(EtcdConfig(endpoints=(clean_etcd,)), None, None, by="ops@bastion")
    unlock = await actions.unlock("workers", "n1", "airlock")
    set_max = await actions.set_max("workers", 3, "airlock")
    assert not unlock.ok and not set_max.ok and "never writes airlock" in unlock.message
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []  # no locksmith group "airlock/workers" made
    assert raw_get(clean_etcd, "v3", key) == b'{"total_slots":1,"holders":["n1"]}'
