"""A multi-member etcd cluster on loopback ports: what a real deployment runs (three or five
members), for tests that kill the member a client is using and for trying coreroll against more
than one endpoint.

    with EmbeddedCluster(3) as cluster:
        EtcdConfig(endpoints=cluster.endpoints)
        cluster.members[0].kill()        # SIGKILL one member; the other two keep a quorum
        cluster.members[0].start()       # back with its data; it catches up from the leader
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from coreroll.etcd.launcher import EmbeddedEtcd, EtcdStartError, free_port


class EmbeddedCluster:
    def __init__(
        self, size: int = 3, *, base_dir: str | Path | None = None, startup_timeout: float = 30.0
    ) -> None:
        if size < 1:
            raise ValueError(f"an etcd cluster needs at least one member, not {size}")
        self._own_dir = base_dir is None
        self.base_dir = (
            Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="coreroll-etcd-cluster-"))
        )
        names = [f"member{i}" for i in range(size)]
        peers = {name: free_port() for name in names}
        initial = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in peers.items())
        # each cluster gets its own token, so members of an earlier cluster on reused ports cannot join
        token = [
            "--initial-cluster-token",
            f"coreroll-{uuid.uuid4().hex[:12]}",
            "--initial-cluster-state",
            "new",
        ]
        self.members = [
            EmbeddedEtcd(
                data_dir=self.base_dir / name,
                name=name,
                peer_port=peers[name],
                initial_cluster=initial,
                extra_args=token,
                startup_timeout=startup_timeout,
            )
            for name in names
        ]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(member.endpoint for member in self.members)

    def start(self) -> EmbeddedCluster:
        for member in self.members:
            member.launch()
        try:
            for member in self.members:
                member.wait_healthy()
        except EtcdStartError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for member in self.members:
            member.stop(keep_data=True)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
