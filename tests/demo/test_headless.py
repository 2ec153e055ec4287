"""`coreroll demo --headless`: the real command, the whole system, a small fleet on a fast clock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coreroll.demo.locklog import LockReport, max_holders
from coreroll.demo.plan import fleet_scenario, pick_victim
from coreroll.fleet.history import LockEvent, check_capacity
from coreroll.locks import Semaphore

pytestmark = pytest.mark.slow

FAST = ["--nodes", "8", "--time-factor", "150"]


def demo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coreroll", "demo", "--headless", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def data_dir(stderr: str) -> Path:
    match = re.search(r"data in (\S+)/etcd\)", stderr)
    assert match, stderr
    return Path(match.group(1))


@pytest.mark.slow
def test_rollout_passes_its_invariants_and_cleans_up() -> None:
    result = demo(*FAST, "--duration", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # a progress line per phase, in order
    for phase in ("published to alpha", "promoted to beta", "promoted to stable", "rollout complete"):
        assert phase in out, out
    assert out.index("published to alpha") < out.index("promoted to beta") < out.index("promoted to stable")
    assert "nodes per version: 3815.2.1: 8\n" in out
    assert re.search(r"max lock holders seen / max: \(default\) [12]/2, db 1/1, lb 1/1", out), out
    assert "ok   no lock group over its max" in out
    assert "result: PASS" in out
    assert "waiting for the embedded etcd" in result.stderr  # startup says what it waits for
    assert not data_dir(result.stderr).exists()  # temporary files removed


@pytest.mark.slow
def test_a_scenario_that_does_not_finish_fails_and_keep_keeps_the_state(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = demo("--nodes", "3", "--time-factor", "10", "--duration", "1", "--keep", str(keep))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL the scenario did not reach its end" in result.stdout
    assert "result: FAIL" in result.stdout
    assert (keep / "server" / "coreroll.db").is_file()
    assert (keep / "server" / "keys" / "update-payload-key.pub.pem").is_file()
    assert len(list((keep / "fleet").glob("node-*"))) == 3
    assert (keep / "demo.log").is_file()


def test_usage_errors_name_the_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "demo", "--duration", "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "--duration only applies with --headless" in result.stderr
    result = demo("--nodes", "0")
    assert result.returncode == 1
    assert "--nodes must be at least 1" in result.stderr


def test_max_holders_and_an_over_max_history_fail_the_lock_check() -> None:
    events = [
        LockEvent(5, "db", Semaphore(0, 1, ["a"])),
        LockEvent(6, "db", Semaphore(1, 1, [])),
        LockEvent(7, "", Semaphore(0, 2, ["a", "b"])),
        LockEvent(8, "lb", Semaphore(-1, 1, ["c", "d"])),  # someone wrote past the max
        LockEvent(9, "lb", None),
    ]
    assert max_holders(events) == {"db": 1, "": 2, "lb": 2}
    problems = check_capacity(events, {"": 2, "lb": 1, "db": 1})
    report = LockReport(max_holders(events), {"": 2, "lb": 1, "db": 1}, problems)
    assert not report.ok
    assert report.line() == "(default) 2/2, db 1/1, lb 2/1"
    assert "revision 8: group lb had 2 holders" in problems[0]


def test_scenarios_pin_their_fault_on_chosen_nodes() -> None:
    import random

    bad = fleet_scenario("bad-release").assign(10, random.Random(3))
    alpha = [p for p in bad if p.channel == "alpha"]
    assert alpha and [p.boot_fails for p in alpha][::2] == [True] * len(alpha[::2])
    assert not any(p.boot_fails for p in bad if p.channel != "alpha")
    stuck = fleet_scenario("stuck-lock").assign(10, random.Random(3))
    victims = [p for p in stuck if p.die_rebooting]
    assert len(victims) == 1 and victims[0].lock_group == "db"
    assert victims[0].index == pick_victim(stuck)
    with pytest.raises(ValueError, match="rollout, bad-release, stuck-lock"):
        fleet_scenario("nope")


def test_a_part_that_cannot_start_is_named_and_nothing_is_left_behind(tmp_path: Path) -> None:
    env = {**os.environ, "COREROLL_ETCD_BINARY": str(tmp_path / "no-etcd"), "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "demo", "--headless", "--nodes", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert f"coreroll demo: could not start: COREROLL_ETCD_BINARY={tmp_path / 'no-etcd'}" in result.stderr
    assert list(tmp_path.glob("coreroll-demo-*")) == []  # its temporary directory is gone
