"""locksmith-compatible reboot locks: the semaphore rules, its keys, and the etcd v3 / v2 stores.

Public API (see each module's docstring):
- `Semaphore`, `new_semaphore`, `parse_semaphore`, errors `LockError`, `SemaphoreFullError`,
  `HolderExistsError`, `HolderNotFoundError`, `SemaphoreFormatError`, `SemaphoreRangeError`,
  `INT64_MIN`, `INT64_MAX`, `in_int64`                                   (coreroll.locks.semaphore)
- `semaphore_key`, `group_from_key`, `query_escape`, `group_label`       (coreroll.locks.keys)
- `LockStore` (the backend protocol), `GroupState`, `LockConflictError`   (coreroll.locks.store)
- `open_lock_store(config) -> LockStore` (the v3 or v2 backend by `config.api`); `--etcd-api auto`:
  `open_chosen_store(config, group)`, `survey_lock_apis`, `LockApiSurvey`  (coreroll.locks.auto)
- `read_airlock_groups(config)`                                          (coreroll.locks.airlock)
- `audit_target(group, holder=None)`: the audit record `target` for a lock change;
  `set_max_result(old, new)`: its `result` for a set-max (`ok: max 1 -> 3`). The CLI and the
  dashboard both use these, so one change reads the same whoever made it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coreroll.locks.auto import LockApiSurvey, open_chosen_store, open_lock_store, survey_lock_apis
    from coreroll.locks.keys import group_from_key, group_label, query_escape, semaphore_key
    from coreroll.locks.semaphore import (
        INT64_MAX,
        INT64_MIN,
        HolderExistsError,
        HolderNotFoundError,
        LockError,
        Semaphore,
        SemaphoreFormatError,
        SemaphoreFullError,
        SemaphoreRangeError,
        in_int64,
        new_semaphore,
        parse_semaphore,
    )
    from coreroll.locks.store import GroupState, LockConflictError, LockStore

# Names load on first use: `coreroll lock --help` imports coreroll.locks.semaphore, and must not
# pay for asyncio and the stores.
_WHERE = {
    **dict.fromkeys(("LockApiSurvey", "open_chosen_store", "open_lock_store", "survey_lock_apis"), "auto"),
    **dict.fromkeys(("group_from_key", "group_label", "query_escape", "semaphore_key"), "keys"),
    **dict.fromkeys(
        (
            "INT64_MAX", "INT64_MIN", "HolderExistsError", "HolderNotFoundError", "LockError", "Semaphore",
            "SemaphoreFormatError", "SemaphoreFullError", "SemaphoreRangeError", "in_int64", "new_semaphore",
            "parse_semaphore",
        ),
        "semaphore",
    ),
    **dict.fromkeys(("GroupState", "LockConflictError", "LockStore"), "store"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"coreroll.locks.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'coreroll.locks' has no attribute {name!r}")


def audit_target(group: str, holder: str | None = None) -> str:
    """`lock group "lb" holder 69d2...` (default group: `lock group (default)`)."""
    name = f'"{group}"' if group else "(default)"
    return f"lock group {name}" + (f" holder {holder}" if holder is not None else "")


def set_max_result(old: int, new: int) -> str:
    return f"ok: max {old} -> {new}"


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "GroupState",
    "HolderExistsError",
    "HolderNotFoundError",
    "LockApiSurvey",
    "LockConflictError",
    "LockError",
    "LockStore",
    "Semaphore",
    "SemaphoreFormatError",
    "SemaphoreFullError",
    "SemaphoreRangeError",
    "audit_target",
    "group_from_key",
    "group_label",
    "in_int64",
    "new_semaphore",
    "open_chosen_store",
    "open_lock_store",
    "parse_semaphore",
    "query_escape",
    "semaphore_key",
    "set_max_result",
    "survey_lock_apis",
]
