"""etcd: the embedded launcher, connection settings, and the v3 and v2 clients."""

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd, EtcdNotFoundError, find_etcd_binary

__all__ = ["EmbeddedEtcd", "EtcdConfig", "EtcdNotFoundError", "find_etcd_binary"]
