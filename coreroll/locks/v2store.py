"""The lock store on etcd's v2 keys API, where Flatcar's locksmithd keeps its semaphores:
`KVLockStore` (coreroll/locks/kvstore.py) through the v2 port (coreroll/etcd/v2kv.py).

Keys are the v3 keys with a `/` in front (`/coreos.com/updateengine/rebootlock/semaphore`).
Creation is `PUT ?prevExist=false` (105 node exists means someone else created it), CAS is
`PUT ?prevIndex=<modifiedIndex>` (101 compare failed means a lost race). The watch long-polls
`?wait=true&recursive=true&waitIndex=N`; when etcd has dropped the events after N (error 401, its
v2 history keeps 1000 events) it lists again and carries on.
"""

from __future__ import annotations

from coreroll.locks.kvstore import KVLockStore


class V2LockStore(KVLockStore):
    api = "v2"
    # A failed v2 compare costs a full raft round (etcd applies prevIndex PUTs in order) and the
    # retry needs another read, so back off more than v3: with 100 clients a 0.25 s cap let lost
    # compares crowd out the winning ones (bench/locks.py, `each` mode).
    backoff_base = 0.005
    backoff_cap = 1.0
