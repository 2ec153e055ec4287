"""Shared by the fleet tests: the two versions of a rollout and a fleet against the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.fleet.scenario import Scenario
from coreroll.fleet.sim import Fleet
from coreroll.node.clock import ScaledClock
from tests.node.test_engine_support import server_public_key

OLD, NEW = "3000.0.0", "3100.0.0"


def rollout_fleet(
    tmp_path: Path,
    server: Any,  # tests.node.test_engine_support.update_server
    etcd: EtcdConfig,
    scenario: Scenario,
    nodes: int,
    *,
    seed: int,
) -> Fleet:
    """`nodes` agents on OLD at x100, checking with `server`, reporting every 2 real seconds."""
    return Fleet(
        tmp_path / "fleet",
        server.url,
        etcd,
        scenario,
        nodes,
        ScaledClock(100),
        version=OLD,
        image=b"installed image " * 64,
        public_key=server_public_key(server.settings.data_dir),
        seed=seed,
        report_interval=2.0,
    )
