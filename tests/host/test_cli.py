"""`coreroll report` as the container runs it: a real process, etcd from the host's update.conf,
a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from tests.host.conftest import Services
from tests.host.fakehost import ETC_UPDATE_CONF, MACHINE_ID, write
from tests.host.helpers import alive, wait_status


@pytest.fixture
async def v3(clean_etcd: str) -> AsyncIterator[Any]:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    yield client
    await client.close()


async def test_report_process_uses_the_hosts_locksmithd_endpoint_and_stops_cleanly(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    write(host / "etc/flatcar/update.conf", ETC_UPDATE_CONF + f"LOCKSMITHD_ENDPOINT={clean_etcd}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coreroll", "report", "--root", str(host), "--dbus-address", services.address,
        "--cgpt", "/nonexistent/cgpt", "--report-interval", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},  # no COREROLL_ETCD / LOCKSMITHCTL_*: the endpoint comes from update.conf
    )  # fmt: skip
    try:
        doc = await wait_status(v3, MACHINE_ID, lambda d: d["active_partition"] == "USR-A", deadline=30)
        assert (doc["version"], doc["channel"], doc["update"]["status"]) == (
            "3815.2.1",
            "beta",
            "UPDATE_STATUS_IDLE",
        )
        assert await alive(v3, MACHINE_ID) is not None
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = err.decode()
    assert process.returncode == 0, stderr
    assert "stopping: revoking the alive lease" in stderr
    assert await alive(v3, MACHINE_ID) is None


async def test_the_hosts_locksmithd_endpoint_is_logged_with_escapes_visible(host: Path) -> None:
    """Issue 16 defect 13 (part): update.conf's LOCKSMITHD_ENDPOINT reached stderr raw (a terminal
    showing the log would have been retitled)."""
    endpoint = "http://127.0.0.1:9\x1b]0;pwned\x07"
    write(host / "etc/flatcar/update.conf", ETC_UPDATE_CONF + f"LOCKSMITHD_ENDPOINT={endpoint}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coreroll", "report", "--root", str(host), "--dbus-address", "unix:path=/nonexistent",
        "--cgpt", "/nonexistent/cgpt",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    stderr = err.decode()
    assert process.returncode == 1, stderr  # that endpoint cannot be reached
    assert "connecting to etcd at http://127.0.0.1:9\\x1b]0;pwned\\x07" in stderr
    assert "\x1b" not in stderr and "\x07" not in stderr
