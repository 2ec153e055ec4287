"""Fixtures for the lock tests: the API under test (v3, v2), a store on the session etcd, and
`coreroll lock` run in-process with no ambient LOCKSMITHCTL_* settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from coreroll.cli import main
from coreroll.etcd.config import EtcdConfig
from coreroll.locks import LockStore, open_lock_store

MID = "69d27b356a94476da859461d3a3bc6fd"  # the machine id in the machine-id file `lock` reads


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOCKSMITHCTL_* or COREROLL_ETCD from the environment; /etc/machine-id is a file holding MID."""
    for name in list(os.environ):
        if name.startswith("LOCKSMITHCTL_") or name == "COREROLL_ETCD":
            monkeypatch.delenv(name)
    machine_id = tmp_path / "machine-id"
    machine_id.write_text(MID + "\n")
    monkeypatch.setenv("COREROLL_MACHINE_ID_FILE", str(machine_id))


@pytest.fixture
def lock_cli(no_ambient_settings: None, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`coreroll lock ARGV...` in this process: its exit code, stdout and stderr."""

    def run(*argv: str) -> Result:
        code = main(["lock", *argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(params=["v3", "v2"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(clean_etcd: str, api: str) -> EtcdConfig:
    return EtcdConfig(endpoints=(clean_etcd,), api=api, timeout=3.0)


@pytest.fixture
async def store(config: EtcdConfig) -> AsyncIterator[LockStore]:
    lock_store = open_lock_store(config)
    yield lock_store
    await lock_store.close()
