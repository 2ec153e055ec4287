"""The airlock reader and the audit log, against the real etcd (v3)."""

from __future__ import annotations

import pytest

from coreroll.audit import AUDIT_PREFIX, append_audit, current_user, new_sortable_id, read_audit
from coreroll.etcd.config import EtcdConfig
from coreroll.locks import SemaphoreFormatError
from coreroll.locks.airlock import AirlockSemaphore, airlock_key, read_airlock_groups
from tests.locks.rawetcd import raw_get, raw_put


async def test_airlock_groups_are_read_not_written(clean_etcd: str) -> None:
    config = EtcdConfig(endpoints=(clean_etcd,))
    raw_put(
        clean_etcd,
        "v3",
        airlock_key("default"),
        b'{"total_slots":2,"holders":["c988d2509fdf5cdcbed39037c56406fb"]}',
    )
    raw_put(clean_etcd, "v3", airlock_key("workers/eu"), b'{"total_slots":1,"holders":[]}')
    groups = await read_airlock_groups(config)
    assert groups == {
        "default": AirlockSemaphore(2, ["c988d2509fdf5cdcbed39037c56406fb"]),
        "workers/eu": AirlockSemaphore(1, []),
    }
    assert groups["default"].available == 1
    raw_put(clean_etcd, "v3", airlock_key("bad"), b'{"slots":2}')
    with pytest.raises(SemaphoreFormatError, match=r"com\.coreos\.airlock/groups/bad/v1/semaphore"):
        await read_airlock_groups(config)
    assert raw_get(clean_etcd, "v3", airlock_key("bad")) == b'{"slots":2}'


async def test_audit_records_sorted_and_limited(clean_etcd: str) -> None:
    config = EtcdConfig(endpoints=(clean_etcd,))
    keys = [await append_audit(config, "unlock", f"lock group (default) holder m{i}", "ok") for i in range(5)]
    assert keys == sorted(keys) and all(k.startswith(AUDIT_PREFIX) for k in keys)
    newest = await read_audit(config, limit=3)
    assert [r["target"] for r in newest] == [f"lock group (default) holder m{i}" for i in (2, 3, 4)]
    assert newest[0]["by"] == current_user() and "@" in newest[0]["by"]
    await append_audit(config, "set-max", "lock group (default)", "Old-Max 1 -> Max 2", by="ops@bastion")
    assert (await read_audit(config, limit=1))[0]["by"] == "ops@bastion"


def test_sortable_ids_sort_by_time() -> None:
    first, second = new_sortable_id(), new_sortable_id()
    assert len(first) == len(second) and first[:19] <= second[:19] and first != second
