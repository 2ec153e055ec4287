"""`coreroll fleet` on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coreroll.cli import main
from tests.node.test_engine_support import publish_synthetic


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "--list-scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("bench", "faults", "mixed", "stable"):
        assert f"\n{name} " in f"\n{out}"


def test_refuses_bad_arguments(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COREROLL_SERVER", raising=False)
    monkeypatch.delenv("COREROLL_ETCD", raising=False)
    assert main(["fleet", "--scenario", "nope", "--server", "http://x", "--etcd", "http://y"]) == 1
    assert "unknown scenario 'nope': choose one of bench, faults, mixed, stable" in capsys.readouterr().err
    assert main(["fleet", "--etcd", "http://127.0.0.1:1"]) == 1
    assert "no update server: pass --server URL" in capsys.readouterr().err
    assert main(["fleet", "--server", "http://x"]) == 1
    assert "no etcd: pass --etcd URL" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_a_small_fleet_with_progress(
    clean_etcd: str, update_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_synthetic(update_server, "3000.0.0", channel="stable")
    state = tmp_path / "fleet"
    argv = ["fleet", "--nodes", "3", "--server", update_server.url, "--etcd", clean_etcd]
    argv += ["--scenario", "stable", "--time-factor", "100", "--duration", "2", "--progress", "0.5"]
    argv += ["--state", str(state)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "starting 3 nodes (scenario stable, version 3000.0.0, x100)" in err
    assert "up 3/3 | 3000.0.0:3" in err
    assert sorted(p.name for p in state.iterdir()) == ["node-0000", "node-0001", "node-0002"]
    assert main(["node", "cgpt-show", "--state", str(state / "node-0000")]) == 0


def test_unreachable_server_or_etcd_is_one_line(
    clean_etcd: str, update_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from coreroll.etcd.launcher import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["fleet", "--nodes", "1", "--server", dead, "--etcd", clean_etcd]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"coreroll fleet: update server {dead} unreachable ({dead}/api/v1/channels: ")
    argv = ["fleet", "--nodes", "1", "--server", update_server.url, "--etcd", dead, "--version", "1.0.0"]
    assert main(argv) == 1
    assert f"no etcd endpoints available, tried: {dead}" in capsys.readouterr().err
