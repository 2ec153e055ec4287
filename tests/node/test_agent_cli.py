"""`coreroll agent` as a process: provisions its state dir, reports to etcd, exits cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from coreroll.node.partitions import Disk
from coreroll.node.updateconf import UpdateConf
from coreroll.wire.keys import alive_key, status_key

pytestmark = pytest.mark.slow


def etcd_get(endpoint: str, key: str) -> bytes | None:
    import base64

    reply = httpx.post(
        f"{endpoint}/v3/kv/range", json={"key": base64.b64encode(key.encode()).decode()}, timeout=5
    )
    kvs = reply.json().get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else None


def wait(predicate, what: str, within: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)  # polling another process: there is nothing to wait on
    raise AssertionError(f"timed out waiting for {what}")


def test_agent_process_provisions_reports_and_stops_on_sigterm(tmp_path: Path, clean_etcd: str) -> None:
    state = tmp_path / "node"
    command = [
        sys.executable, "-m", "coreroll", "agent", "--state", str(state), "--server", "http://127.0.0.1:9",
        "--etcd", clean_etcd, "--machine-id", "feedfacefeedfacefeedfacefeedface", "--time-factor", "100",
        "--group", "beta", "--report-interval", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        raw = wait(
            lambda: etcd_get(clean_etcd, status_key("feedfacefeedfacefeedfacefeedface")),
            "status",
        )
        doc = json.loads(raw)
        assert (doc["channel"], doc["version"], doc["server"]) == (
            "beta",
            "1.0.0",
            "http://127.0.0.1:9/v1/update/",
        )
        assert etcd_get(clean_etcd, alive_key("feedfacefeedfacefeedfacefeedface")) is not None
        conf = UpdateConf.load(state / "update.conf")
        assert (conf.group, conf.reboot_strategy, conf.locksmith_endpoints) == (
            "beta",
            "etcd-lock",
            (clean_etcd,),
        )
        assert Disk(state).active.version == "1.0.0"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "provisioned" in stderr and "stopping" in stderr
    assert etcd_get(clean_etcd, alive_key("feedfacefeedfacefeedfacefeedface")) is None


def test_agent_refuses_missing_endpoints_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "agent", "--state", str(tmp_path / "n"), "--server", "http://x"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["coreroll agent: --etcd (or COREROLL_ETCD) is required"]
    assert not (tmp_path / "n").exists()  # nothing provisioned
