"""etcd: the `EtcdKV` port and its backends (v3 gRPC, v3 JSON gateway, v2 keys), the embedded
launcher and connection settings. Names are loaded on first use, so `import coreroll.etcd.config`
costs no HTTP or gRPC library (`coreroll lock` must start fast)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coreroll.etcd.config import EtcdConfig
    from coreroll.etcd.launcher import EmbeddedEtcd, EtcdNotFoundError, find_etcd_binary

_WHERE = {
    "EtcdConfig": "coreroll.etcd.config",
    "EmbeddedEtcd": "coreroll.etcd.launcher",
    "EtcdNotFoundError": "coreroll.etcd.launcher",
    "find_etcd_binary": "coreroll.etcd.launcher",
}

__all__ = ["EmbeddedEtcd", "EtcdConfig", "EtcdNotFoundError", "find_etcd_binary"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'coreroll.etcd' has no attribute {name!r}")
