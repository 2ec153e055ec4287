"""`coreroll lock` end to end against the real etcd: locksmithctl's exact output and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coreroll.audit import read_audit
from coreroll.cli import main
from coreroll.etcd.config import EtcdConfig
from coreroll.locks import semaphore_key
from coreroll.wire.keys import LOCK_DEFAULT_KEY
from tests.locks.conftest import MID, Result
from tests.locks.rawetcd import raw_get, raw_put

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_ambient_settings")]

DEFAULT_KEY = LOCK_DEFAULT_KEY


@pytest.fixture
def cli(clean_etcd: str, api: str, lock_cli: Callable[..., Result]) -> Callable[..., Result]:
    def run(*argv: str, endpoint: bool = True) -> Result:
        return lock_cli(*argv, *(["--endpoint", clean_etcd, "--etcd-api", api] if endpoint else []))

    return run


def test_status_lock_unlock_set_max_output(cli, clean_etcd: str, api: str) -> None:
    assert cli("status") == Result(0, "Available: 1\nMax: 1\n", "")
    assert cli("lock") == Result(0, "", "")  # id from the machine-id file
    assert cli("status") == Result(0, f"Available: 0\nMax: 1\n\nMACHINE ID\n{MID}\n", "")
    assert cli("lock", "other") == Result(1, "", "Error locking: semaphore is at 0\n")
    assert cli("set-max", "4") == Result(0, "Old-Max: 1\nMax: 4\n", "")
    assert cli("lock", MID) == Result(1, "", "Error locking: holder exists\n")
    assert cli("lock", "0001") == Result(0, "", "")
    assert cli("status") == Result(0, f"Available: 2\nMax: 4\n\nMACHINE ID\n0001\n{MID}\n", "")
    assert cli("set-max", "1") == Result(0, "Old-Max: 4\nMax: 1\n", "")
    assert cli("status").out.startswith("Available: -1\nMax: 1\n")
    assert cli("unlock") == Result(0, "", "")
    assert cli("unlock", "0001") == Result(0, "", "")
    assert raw_get(clean_etcd, api, DEFAULT_KEY) == b'{"semaphore":1,"max":1,"holders":[]}'


def test_unlock_of_non_holder(cli, clean_etcd: str, api: str) -> None:
    cli("lock", "a")
    before = raw_get(clean_etcd, api, DEFAULT_KEY)
    assert cli("unlock", "b") == Result(1, "", "Error unlocking: holder does not exist\n")
    assert raw_get(clean_etcd, api, DEFAULT_KEY) == before


def test_json_output(cli, api: str) -> None:
    status = cli("status", "--json")
    assert status.code == 0
    assert json.loads(status.out) | {"revision": 0} == {
        "group": "",
        "key": DEFAULT_KEY,
        "api": api,
        "semaphore": 1,
        "max": 1,
        "holders": [],
        "revision": 0,
    }
    locked = json.loads(cli("--json", "lock", "a").out)
    assert (locked["group"], locked["holder"], locked["action"]) == ("", "a", "lock")
    assert json.loads(cli("set-max", "3", "--json").out) == {"group": "", "old_max": 1, "max": 3, "api": api}
    groups = json.loads(cli("groups", "--json").out)
    assert [(g["group"], g["api"], g["semaphore"], g["max"], g["holders"], g["error"]) for g in groups] == [
        ("", api, 2, 3, ["a"], None)
    ]


def test_groups_lists_real_names(cli, clean_etcd: str, api: str) -> None:
    for group in ("lb", "a/b c", "100%", "日本"):
        assert cli("--group", group, "lock", "m1").code == 0
    raw_put(clean_etcd, api, semaphore_key("broken"), b"{oops")
    result = cli("groups")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].split() == ["GROUP", "AVAILABLE", "MAX", "HOLDERS"]
    assert lines == [
        "GROUP   AVAILABLE  MAX  HOLDERS",
        "100%    0          1    m1",
        "a/b c   0          1    m1",
        "broken  ?          ?    (unreadable)",
        "lb      0          1    m1",
        "日本    0          1    m1",
    ]
    assert result.err == (
        f"Error listing groups: {semaphore_key('broken')}: not a locksmith semaphore: "
        "invalid JSON (Expecting property name enclosed in double quotes) in '{oops'\n"
    )


def test_flags_before_after_single_dash_and_env(
    cli, clean_etcd: str, api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli("-endpoint", clean_etcd, "-etcd-api", api, "-group", "lb", "lock", "x", endpoint=False).code == 0
    )
    refused = cli("lock", "y", "--group", "lb", "--endpoint", clean_etcd, "--etcd-api", api, endpoint=False)
    assert refused == Result(1, "", "Error locking: semaphore is at 0\n")
    # flags before `lock` itself, as locksmithctl users type them
    assert main(["--endpoint", clean_etcd, "--etcd-api", api, "lock", "--group=lb", "set-max", "2"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LOCKSMITHCTL_GROUP", "lb")
    assert cli("status").out == "Available: 1\nMax: 2\n\nMACHINE ID\nx\n"
    # the command line wins over the environment
    assert cli("--group", "other", "status").out == "Available: 1\nMax: 1\n"
    monkeypatch.setenv("LOCKSMITHCTL_ENDPOINT", clean_etcd)
    monkeypatch.setenv("LOCKSMITHCTL_ETCD_API", api)
    monkeypatch.setenv("LOCKSMITHCTL_JSON", "true")
    assert json.loads(cli("status", endpoint=False).out)["holders"] == ["x"]


def test_bad_semaphore_json_names_key_and_is_kept(cli, clean_etcd: str, api: str) -> None:
    key = semaphore_key("lb")
    raw_put(clean_etcd, api, key, b'{"semaphore":"one"}')
    for argv, prefix in (
        (("status",), "Error reading semaphore:"),
        (("lock", "a"), "Error locking:"),
        (("unlock", "a"), "Error unlocking:"),
        (("set-max", "3"), "Error setting value:"),
    ):
        result = cli("--group", "lb", *argv)
        assert result.code == 1 and result.out == ""
        assert (
            result.err == f'{prefix} {key}: not a locksmith semaphore: "semaphore" "one" is not an integer\n'
        )
    assert raw_get(clean_etcd, api, key) == b'{"semaphore":"one"}'


def test_set_max_policy(cli) -> None:
    assert cli("set-max") == Result(1, "", "New maximum value must be set.\n")
    assert cli("set-max", "many") == Result(1, "", "Invalid maximum value: many\n")
    assert cli("set-max", "-1") == Result(
        1, "", "Invalid maximum value: -1 (must be 0 or more; 0 stops every new lock in the group)\n"
    )
    assert cli("status").out == "Available: 1\nMax: 1\n"
    assert cli("set-max", "0") == Result(
        0,
        "Old-Max: 1\nMax: 0\n",
        "note: max is 0: no machine in group (default) can take the reboot lock until set-max raises it\n",
    )
    assert cli("lock", "a") == Result(1, "", "Error locking: semaphore is at 0\n")


def test_set_max_beyond_int64_is_refused(cli, clean_etcd: str, api: str) -> None:
    out_of_range = "(out of range: at most 9223372036854775807, what locksmith can read)"
    cli("status")
    before = raw_get(clean_etcd, api, DEFAULT_KEY)
    for value in ("9223372036854775808", "1" + "0" * 5000):
        assert cli("set-max", value) == Result(1, "", f"Invalid maximum value: {value} {out_of_range}\n")
    for value in ("١٢", "1_0", " 3", "0x10", "1\x1b]0;pwned\x07"):
        result = cli("set-max", value)
        assert result.code == 1 and result.out == "" and result.err.startswith("Invalid maximum value: ")
        assert "\x1b" not in result.err
    assert cli("set-max", "-" + "9" * 30).err.endswith(
        "(must be 0 or more; 0 stops every new lock in the group)\n"
    )
    assert raw_get(clean_etcd, api, DEFAULT_KEY) == before
    assert cli("set-max", "9223372036854775807") == Result(0, "Old-Max: 1\nMax: 9223372036854775807\n", "")


def test_unlock_past_int64_is_refused_and_kept(cli, clean_etcd: str, api: str) -> None:
    full = b'{"semaphore":9223372036854775807,"max":9223372036854775807,"holders":["a"]}'
    raw_put(clean_etcd, api, DEFAULT_KEY, full)
    result = cli("unlock", "a")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("Error unlocking: semaphore would be 9223372036854775808, outside the int64")
    assert raw_get(clean_etcd, api, DEFAULT_KEY) == full


def test_text_output_shows_control_characters_escaped(cli, clean_etcd: str, api: str) -> None:
    title = "\x1b]0;pwned\x07"
    assert cli("--group", "\x1b[2J", "set-max", "2").code == 0
    assert cli("--group", "\x1b[2J", "lock", title) == Result(0, "", "")
    status = cli("--group", "\x1b[2J", "status")
    assert status == Result(0, "Available: 1\nMax: 2\n\nMACHINE ID\n\\x1b]0;pwned\\x07\n", "")
    groups = cli("groups")
    assert groups.code == 0 and "\\x1b[2J  1          2    \\x1b]0;pwned\\x07" in groups.out
    assert "\x1b" not in groups.out
    refused = cli("--group", "\x1b[2J", "lock", title)
    assert refused == Result(1, "", "Error locking: holder exists\n")
    assert json.loads(cli("--group", "\x1b[2J", "status", "--json").out)["holders"] == [title]  # JSON: exact


def test_usage_errors(cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cli("reboot-now") == Result(
        2,
        "",
        'coreroll lock: unknown subcommand: "reboot-now" (one of status, lock, unlock, set-max, groups, help)\n',
    )
    assert cli("status", "extra").code == 2
    monkeypatch.setenv("COREROLL_MACHINE_ID_FILE", str(tmp_path / "absent"))
    result = cli("lock")
    assert result.code == 1
    assert result.err == (
        f"Cannot read machine-id: {tmp_path / 'absent'} does not exist (containers often have none); "
        "give the id as an argument\n"
    )


def test_audit_records_each_change(cli, clean_etcd: str) -> None:
    cli("--group", "lb", "lock", "a")
    cli("--group", "lb", "unlock", "b")  # refused: no record
    cli("--group", "lb", "set-max", "2")
    cli("--group", "lb", "unlock", "a")
    records = asyncio.run(read_audit(EtcdConfig(endpoints=(clean_etcd,))))
    assert [(r["action"], r["target"], r["result"]) for r in records] == [
        ("lock", 'lock group "lb" holder a', "ok"),
        ("set-max", 'lock group "lb"', "ok: max 1 -> 2"),  # the wording the dashboard writes
        ("unlock", 'lock group "lb" holder a', "ok"),
    ]
    assert all("@" in r["by"] and r["at"].endswith("Z") for r in records)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_unreachable_etcd_one_line_within_timeout(api: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSMITHCTL_") and k != "COREROLL_ETCD"}
    argv = [sys.executable, "-m", "coreroll", "lock", "--etcd-api", api, "status"]
    started = time.monotonic()
    explicit = subprocess.run(
        [*argv, "--endpoint", "http://127.0.0.1:9,http://127.0.0.1:7"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert time.monotonic() - started < 15
    assert (explicit.returncode, explicit.stdout) == (1, "")
    assert explicit.stderr.count("\n") == 1
    assert explicit.stderr.startswith(
        "Error initializing etcd client: no etcd endpoints available, tried: http://127.0.0.1:9,http://127.0.0.1:7"
    )
    if _listening(2379) or _listening(4001):
        pytest.skip("something listens on the default etcd ports here")
    default = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert (default.returncode, default.stdout) == (1, "")
    assert default.stderr == (
        "Error initializing etcd client: no etcd endpoints available, tried: "
        "http://127.0.0.1:2379,http://127.0.0.1:4001 (nothing listens there: give --endpoint URL or "
        "LOCKSMITHCTL_ENDPOINT, or try `coreroll etcd -- coreroll lock status` for an embedded etcd)\n"
    )
