"""Running a HostReporter in a test against the session etcd, and waiting on what it published;
reading a host whose files may be FIFOs without a test that hangs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3kv import AetcdKV
from coreroll.host.reporter import HostReporter, ReportOptions
from coreroll.host.restart import Restarter
from coreroll.node.nodestatus import alive_key, status_key

T = TypeVar("T")


async def start_reporter(
    root: Path,
    etcd: Any,
    endpoint: str,
    *,
    bus_address: str,
    bin_dir: Path | None = None,
    restart: Restarter | None = None,
    report_interval: float = 30.0,
) -> HostReporter:
    options = ReportOptions(
        report_interval=report_interval,
        min_write_gap=0.02,
        bus_address=bus_address,
        cgpt=str(bin_dir / "cgpt") if bin_dir else "/nonexistent/cgpt",
        client_tool=str(bin_dir / "update_engine_client") if bin_dir else "/nonexistent/update_engine_client",
    )
    reporter = HostReporter(
        root, AetcdKV(etcd), etcd_config=EtcdConfig(endpoints=(endpoint,)), options=options, restart=restart
    )
    await reporter.start()
    return reporter


async def wait_status(
    etcd: Any,
    machine_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    deadline: float = 10.0,
    what: str = "the status",
) -> dict[str, Any]:
    """Poll the status key every few ms until `predicate(doc)`; the last document on timeout."""
    start = time.monotonic()
    doc: dict[str, Any] = {}
    while True:
        kv = await etcd.get(status_key(machine_id).encode())
        if kv is not None:
            doc = json.loads(kv.value)
            if predicate(doc):
                return doc
        if time.monotonic() - start > deadline:
            raise AssertionError(f"timed out after {deadline}s waiting for {what}; last document: {doc!r}")
        await asyncio.sleep(0.01)


async def alive(etcd: Any, machine_id: str) -> dict[str, Any] | None:
    kv = await etcd.get(alive_key(machine_id).encode())
    return None if kv is None else json.loads(kv.value)


def without_hanging(call: Callable[[], T], fifos: Sequence[Path], seconds: float = 5.0) -> T:
    """`call()` in a thread, its result or exception. Still running after `seconds` means it is
    blocked opening one of `fifos`: a writer then opens each (so the read ends, and the thread with
    it) and the test fails."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError(
            f"still reading after {seconds}s: blocked on one of {list(map(str, fifos))}"
        ) from None
    finally:
        pool.shutdown(wait=True)
