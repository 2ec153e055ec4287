"""`coreroll report` against a fake Flatcar root, a real dbus-daemon with a test update_engine and
systemd, and the real etcd: what it publishes, and the commands it runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.host.restart import command_restart
from coreroll.node.commandbus import command_prefix
from coreroll.node.partitions import PARTUUIDS
from tests.host.conftest import Services
from tests.host.fakehost import ETC_UPDATE_CONF, MACHINE_ID, executable, fake_cgpt, make_host, write
from tests.host.helpers import alive, start_reporter, wait_status


@pytest.fixture
async def v3(clean_etcd: str) -> AsyncIterator[Any]:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    yield client
    await client.close()


async def queue(v3: Any, command_id: str, action: str, args: dict[str, Any] | None = None) -> None:
    value = {"action": action, "args": args or {}, "by": "ops@bastion", "at": "2026-12-04T10:00:00Z"}
    await v3.put(f"{command_prefix(MACHINE_ID)}{command_id}".encode(), json.dumps(value).encode())


def ran(doc: dict[str, Any], command_id: str) -> bool:
    return (doc["last_command"] or {}).get("id") == command_id


@pytest.mark.parametrize("usr", ["USR-A", "USR-B"])
async def test_publishes_the_real_host(
    tmp_path: Path, usr: str, services: Services, v3: Any, clean_etcd: str
) -> None:
    root = make_host(tmp_path / "host", usr=usr)
    bin_dir = tmp_path / "bin"
    fake_cgpt(bin_dir, tmp_path / "disk")
    reporter = await start_reporter(root, v3, clean_etcd, bus_address=services.address, bin_dir=bin_dir)
    try:
        doc = await wait_status(v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_IDLE")
        assert (doc["machine_id"], doc["hostname"], doc["version"], doc["channel"]) == (
            MACHINE_ID, "worker-7", "3815.2.1", "beta",
        )  # fmt: skip
        assert doc["server"] == "http://127.0.0.1:8400/v1/update/"
        assert doc["active_partition"] == usr
        assert doc["update"] == {
            "status": "UPDATE_STATUS_IDLE",
            "progress": 0.0,
            "new_version": "0.0.0.0",
            "new_size": 0,
            "last_checked_time": 1795770500,
        }
        assert doc["reboot"] == {
            "strategy": "etcd-lock",
            "lock_group": "workers",
            "window": None,
            "holds_lock": None,
        }
        assert doc["boot_id"] == "5b0d6a3e-9c1f-4e2a-8b7d-1a2b3c4d5e6f"
        assert doc["booted_at"] == "2026-11-27T09:00:00.000Z"
        # cgpt show's attributes (fake cgpt prints the repo's own cgpt_show of a disk after postinstall)
        parts = {p["label"]: p for p in doc["partitions"]}
        assert (parts["USR-A"]["priority"], parts["USR-A"]["successful"]) == (1, 1)
        assert (parts["USR-B"]["priority"], parts["USR-B"]["tries"], parts["USR-B"]["successful"]) == (
            2,
            1,
            0,
        )
        assert parts[usr]["version"] == "3815.2.1"
        assert (tmp_path / "disk/cgpt-args").read_text() == "show /dev/sda\n"
        assert await alive(v3, MACHINE_ID) == {
            "boot_id": "5b0d6a3e-9c1f-4e2a-8b7d-1a2b3c4d5e6f",
            "hostname": "worker-7",
        }
        assert reporter.view.engine_via == "dbus"
    finally:
        await reporter.stop()
    assert await alive(v3, MACHINE_ID) is None  # a clean stop revokes the lease


async def test_status_update_signal_is_published_promptly(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        await wait_status(v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_IDLE")
        # report_interval is 30 s: only the signal can bring this within the deadline
        services.engine.set_status(0.5, "UPDATE_STATUS_DOWNLOADING", "3850.0.0", 412316860)
        doc = await wait_status(
            v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_DOWNLOADING", deadline=5.0
        )
        assert (doc["update"]["progress"], doc["update"]["new_version"], doc["update"]["new_size"]) == (
            0.5, "3850.0.0", 412316860,
        )  # fmt: skip
        services.engine.set_status(0.0, "UPDATE_STATUS_UPDATED_NEED_REBOOT", "3850.0.0", 412316860)
        doc = await wait_status(
            v3,
            MACHINE_ID,
            lambda d: d["update"]["status"] == "UPDATE_STATUS_UPDATED_NEED_REBOOT",
            deadline=5.0,
        )
        parts = {p["label"]: p["version"] for p in doc["partitions"]}
        assert parts == {"USR-A": "3815.2.1", "USR-B": "3850.0.0"}  # the new image waits on the other slot
    finally:
        await reporter.stop()


async def test_queued_check_reaches_attempt_update(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        await queue(v3, "0001", "check")
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0001"), what="the command's result")
        assert services.engine.attempts == 1
        assert doc["last_command"]["result"] == "update check started (AttemptUpdate)"
        assert doc["update"]["status"] == "UPDATE_STATUS_CHECKING_FOR_UPDATE"
        assert (await v3.get_prefix(command_prefix(MACHINE_ID).encode())).count == 0  # done and deleted
    finally:
        await reporter.stop()


async def test_queued_set_channel_rewrites_update_conf_and_restarts_update_engine(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        await queue(v3, "0001", "set-channel", {"channel": "alpha"})
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0001"), what="command 0001's result")
        assert doc["channel"] == "alpha"
        conf = host / "etc/flatcar/update.conf"
        assert conf.read_text() == ETC_UPDATE_CONF.replace(
            "GROUP=beta", "GROUP=alpha"
        )  # every other line kept
        assert services.systemd.restarts == [("update-engine.service", "replace")]
        assert doc["last_command"]["result"] == (
            f"GROUP beta -> alpha in {conf}; update-engine.service restarted (systemd RestartUnit)"
        )
        await queue(v3, "0002", "set-channel", {"channel": "bad channel"})
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0002"))
        assert doc["last_command"]["result"] == (
            "set-channel refused: args.channel 'bad channel' is not a channel name "
            "(1-255 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
        )
        assert conf.read_text() == ETC_UPDATE_CONF.replace("GROUP=beta", "GROUP=alpha")
        assert len(services.systemd.restarts) == 1
    finally:
        await reporter.stop()


async def test_restart_command_is_injectable(
    host: Path, services: Services, v3: Any, clean_etcd: str, tmp_path: Path
) -> None:
    marker = tmp_path / "restarted"
    script = executable(tmp_path / "bin/systemctl", f'echo "$@" > "{marker}"\n')
    reporter = await start_reporter(
        host, v3, clean_etcd, bus_address=services.address,
        restart=command_restart([str(script), "restart", "update-engine.service"]),
    )  # fmt: skip
    try:
        await queue(v3, "0001", "set-channel", {"channel": "stable"})
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0001"))
        assert marker.read_text() == "restart update-engine.service\n"
        assert doc["channel"] == "stable" and services.systemd.restarts == []
    finally:
        await reporter.stop()


async def test_falls_back_to_update_engine_client_without_dbus(
    host: Path, v3: Any, clean_etcd: str, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "calls"
    executable(
        bin_dir / "update_engine_client",
        f'echo "$@" >> "{calls}"\n'
        'echo "I1204 update_engine_client.cc:245] Querying Update Engine status..." >&2\n'
        "printf 'LAST_CHECKED_TIME=1795770900\\nPROGRESS=0.750000\\nCURRENT_OP=UPDATE_STATUS_DOWNLOADING\\n"
        "NEW_VERSION=3850.0.0\\nNEW_SIZE=1000\\n'\n",
    )
    reporter = await start_reporter(
        host, v3, clean_etcd, bus_address=f"unix:path={tmp_path / 'no-bus'}", bin_dir=bin_dir
    )
    try:
        doc = await wait_status(
            v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_DOWNLOADING"
        )
        assert (doc["update"]["progress"], doc["update"]["last_checked_time"]) == (0.75, 1795770900)
        assert reporter.view.engine_via == "update_engine_client"
        await queue(v3, "0001", "check")
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0001"))
        assert (
            doc["last_command"]["result"]
            == f"update check started ({bin_dir / 'update_engine_client'} -check_for_update)"
        )
        assert "-check_for_update" in calls.read_text().splitlines()
    finally:
        await reporter.stop()


async def test_hostile_host_files_are_reported_as_unknown(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    write(host / "proc/cmdline", f"verity.usr=PARTUUID={PARTUUIDS['USR-A'][:-1]}\x1b[2J mount.usr=\x00\n")
    (host / "sys/block/dm-0/dm/name").write_text("other\n")
    write(host / "usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION=" + "9" * 5000 + "\n")
    (host / "etc/os-release").unlink()
    write(host / "etc/flatcar/update.conf", ETC_UPDATE_CONF + "GROUP='unterminated\n")
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        doc = await wait_status(v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_IDLE")
        # update_engine would send the track "'unterminated" (it only drops a matching pair of quotes)
        assert (doc["active_partition"], doc["version"], doc["channel"]) == (None, None, None)
        problems = reporter.view.problems()
        assert any("is not a PARTUUID" in p and "\\x1b[2J" in p for p in problems), problems
        assert any(
            p.endswith(
                "active USR partition unknown: nothing in "
                + str(host / "proc/cmdline")
                + " or sysfs names it"
            )
            for p in problems
        )
        assert any("FLATCAR_RELEASE_VERSION='99999" in p and "...' is not a version" in p for p in problems)
        assert any("ignoring malformed line" in p for p in problems)
        assert any(
            p.endswith(
                ":8: GROUP ''unterminated' is not a channel name (1-255 of A-Z a-z 0-9 . _ -, "
                "starting with a letter or digit); channel unknown"
            )
            for p in problems
        ), problems
        # the host is repaired: the next read reports it (no restart needed)
        make_host(host.parent / "fixed")
        write(host / "proc/cmdline", (host.parent / "fixed/proc/cmdline").read_text())
        write(host / "usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION=3815.2.1\n")
        await reporter.refresh()
        doc = await wait_status(v3, MACHINE_ID, lambda d: d["active_partition"] == "USR-A")
        assert doc["version"] == "3815.2.1"
    finally:
        await reporter.stop()


async def test_signals_still_arrive_after_update_engine_restarts(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        await wait_status(v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_IDLE")
        engine = await services.restart_engine()  # what a channel switch does to update_engine
        engine.set_status(0.1, "UPDATE_STATUS_DOWNLOADING", "3850.0.0", 10)
        doc = await wait_status(
            v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_DOWNLOADING", deadline=5.0
        )
        assert doc["update"]["progress"] == 0.1
    finally:
        await reporter.stop()


HOSTILE_CHANNELS = {
    "nul": "beta\x00",
    "escape": "\x1b]0;pwned\x07",
    "command substitution": "$(reboot)",
    "70,000 characters": "a" * 70_000,
    "non-ASCII letter": "bêta",
    "leading dot": ".hidden",
}


async def test_set_channel_refuses_what_is_not_a_channel_name(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    """Issue 16 defect 3: any channel without whitespace was written into update.conf (the last one
    made it larger than coreroll reads, so every later switch was refused)."""
    conf = host / "etc/flatcar/update.conf"
    before = conf.read_bytes()
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        for number, channel in enumerate(HOSTILE_CHANNELS.values(), start=1):
            await queue(v3, f"{number:04d}", "set-channel", {"channel": channel})
            doc = await wait_status(v3, MACHINE_ID, lambda d, n=number: ran(d, f"{n:04d}"))
            result = doc["last_command"]["result"]
            assert result.startswith("set-channel refused: args.channel '"), result
            assert result.endswith(
                "is not a channel name (1-255 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
            )
            assert "\x00" not in result and "\x1b" not in result and len(result) < 300
        assert conf.read_bytes() == before and services.systemd.restarts == []
        await queue(v3, "0100", "set-channel", {"channel": "lts-2024"})  # a real one still switches
        doc = await wait_status(v3, MACHINE_ID, lambda d: ran(d, "0100"))
        assert doc["channel"] == "lts-2024"
        assert conf.read_bytes() == before.replace(b"GROUP=beta", b"GROUP=lts-2024")
    finally:
        await reporter.stop()


async def test_out_of_range_times_are_published_as_null(
    host: Path, services: Services, v3: Any, clean_etcd: str
) -> None:
    """Issue 16 defect 9: a btime beyond 9999 stopped every status report (logged as an etcd
    failure), and a last_checked_time of 2^63-1 was published for the dashboard to refuse."""
    write(host / "proc/stat", "cpu  1 2 3 4\nbtime 999999999999\nprocesses 42\n")
    services.engine.values = [2**63 - 1, 0.0, "UPDATE_STATUS_IDLE", "0.0.0.0", 0]
    reporter = await start_reporter(host, v3, clean_etcd, bus_address=services.address)
    try:
        doc = await wait_status(v3, MACHINE_ID, lambda d: d["update"]["status"] == "UPDATE_STATUS_IDLE")
        assert (doc["booted_at"], doc["update"]["last_checked_time"]) == (None, None)
        assert doc["version"] == "3815.2.1"  # the rest is reported
        problems = reporter.view.problems()
        assert any("btime='999999999999' is out of range" in p for p in problems), problems
        assert any("last checked time '9223372036854775807' is out of range" in p for p in problems)
    finally:
        await reporter.stop()
