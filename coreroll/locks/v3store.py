"""The lock store on etcd v3: `KVLockStore` (coreroll/locks/kvstore.py) through the v3 port
(gRPC, or the JSON gateway when `config.v3_transport == "gateway"`). Creation is
`txn(version(key) == 0) then put`, CAS `txn(mod_revision(key) == seen) then put` whose failure
branch reads the winner's value, so a lost race retries without another read.
"""

from __future__ import annotations

from coreroll.locks.kvstore import KVLockStore


class V3LockStore(KVLockStore):
    api = "v3"
