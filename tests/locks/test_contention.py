"""200 contenders (asyncio tasks in this process plus worker processes) on one group with max 3.

The proof comes from etcd's own history: every version of the semaphore key written during the run
is read back (v3: the key at each revision; v2: the event log via waitIndex) and checked.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3, get_at_revision
from coreroll.locks import Semaphore, open_lock_store, parse_semaphore, semaphore_key
from tests.locks.contender import contend

pytestmark = pytest.mark.slow

GROUP = "contention test/é"
MAX = 3
PROCESSES = 2
PER_PROCESS = 50
IN_PROCESS = 100  # 100 + 2 * 50 = 200 contenders
ROOT = Path(__file__).resolve().parents[2]


async def _history_v3(config: EtcdConfig, key: str, first: int, last: int) -> list[tuple[int, Semaphore]]:
    client = await connect_v3(config)
    try:
        versions = []
        for revision in range(first, last + 1):
            kv = await get_at_revision(client, key.encode(), revision)
            if kv is not None and kv.mod_revision == revision:
                versions.append((revision, parse_semaphore(kv.value, key)))
        return versions
    finally:
        await client.close()


async def _history_v2(endpoint: str, key: str, first: int, last: int) -> list[tuple[int, Semaphore]]:
    versions = []
    index = first
    async with httpx.AsyncClient(timeout=10) as http:
        while index <= last:
            reply = await http.get(
                f"{endpoint}/v2/keys/{quote(key, safe='/')}", params={"wait": "true", "waitIndex": str(index)}
            )
            node = reply.json()["node"]
            versions.append((node["modifiedIndex"], parse_semaphore(node["value"], key)))
            index = node["modifiedIndex"] + 1
    return versions


def _start_workers(endpoint: str, api: str) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.locks.contender", endpoint, api, GROUP, f"p{n}-", str(PER_PROCESS)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]


async def _ready(worker: subprocess.Popen[str]) -> None:
    """Wait until a worker has imported everything and is about to contend."""
    assert worker.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 60)
    assert line.strip() == "ready", f"worker said {line!r}"


async def test_two_hundred_contenders_never_exceed_max(clean_etcd: str, api: str) -> None:
    # etcd's v2 emulation applies every write, failed compares included, through raft: slow under load.
    config = EtcdConfig(endpoints=(clean_etcd,), api=api, timeout=30.0)
    store = open_lock_store(config)
    key = semaphore_key(GROUP)
    await store.set_max(GROUP, MAX)
    _, start = await store.get(GROUP)
    await store.close()

    workers = _start_workers(config.endpoints[0], api)
    try:
        await asyncio.gather(*(_ready(w) for w in workers))
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        records: list[dict[str, Any]] = list(
            await contend(config, GROUP, [f"t-{i:03d}" for i in range(IN_PROCESS)], seconds=120)
        )
        for worker in workers:
            out, err = await asyncio.to_thread(worker.communicate, timeout=120)
            assert worker.returncode == 0, err[-2000:]
            records += json.loads(out.strip().splitlines()[-1])
    finally:
        for worker in workers:  # never leave a worker behind, whatever failed
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)

    assert len({r["holder"] for r in records}) == 200
    assert all(r["listed"] for r in records), "a contender told it held the lock was not listed"
    last = max(r["unlock"] for r in records)
    if api == "v3":
        history = await _history_v3(config, key, start + 1, last)
    else:
        history = await _history_v2(config.endpoints[0], key, start + 1, last)
    by_revision = dict(history)
    assert len(history) == 400  # every lock and every unlock is one version of the key

    for revision, sem in history:
        assert len(sem.holders) <= MAX, f"{len(sem.holders)} holders at revision {revision}"
        assert sem.semaphore == MAX - len(sem.holders) and sem.max == MAX
        assert sem.holders == sorted(set(sem.holders))
    for record in records:
        held = [rev for rev, sem in history if record["lock"] <= rev < record["unlock"]]
        assert held and held[0] == record["lock"]
        assert all(record["holder"] in by_revision[rev].holders for rev in held)
        assert record["holder"] not in by_revision[record["unlock"]].holders
    assert history[-1][1] == Semaphore(MAX, MAX, [])
