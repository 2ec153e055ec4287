"""Reading a real host: facts, the active USR partition, cgpt show, update_engine_client output;
hostile files give a problem naming the file, never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coreroll.host.cgpt import parse_cgpt_show
from coreroll.host.engine_status import parse_client_status, snapshot_from_dbus
from coreroll.host.facts import HostFileError, read_facts
from coreroll.host.usr import active_usr, parse_cmdline_usr
from coreroll.host.view import HostView
from coreroll.node.partitions import PARTUUIDS, Disk, cgpt_show
from tests.host.fakehost import MACHINE_ID, make_host, write

PUBLIC_SERVER = "https://public.update.flatcar-linux.net/v1/update/"  # /usr/share/flatcar/update.conf's


def test_facts_overlay_update_conf_layers(host: Path) -> None:
    write(
        host / "etc/coreos/update.conf",
        "LOCKSMITHD_REBOOT_WINDOW_START=Thu 23:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m\n",
    )
    facts = read_facts(host)
    assert facts.problems == ()
    assert (facts.machine_id, facts.hostname, facts.version) == (MACHINE_ID, "worker-7", "3815.2.1")
    conf = facts.conf
    # /etc/flatcar overrides /usr/share/flatcar; /etc/coreos adds the window
    assert (conf.group, conf.server, conf.reboot_strategy, conf.locksmith_group) == (
        "beta", "http://127.0.0.1:8400/v1/update/", "etcd-lock", "workers",
    )  # fmt: skip
    assert facts.window == "Thu 23:00 1h30m"
    assert facts.boot_id == "5b0d6a3e-9c1f-4e2a-8b7d-1a2b3c4d5e6f" and facts.booted_at == 1795770000.0


def test_version_falls_back_to_os_release(host: Path) -> None:
    (host / "usr/share/flatcar/release").unlink()
    write(host / "etc/os-release", 'ID=flatcar\nVERSION="3760.2.0"\n')
    assert read_facts(host).version == "3760.2.0"


@pytest.mark.parametrize("usr", ["USR-A", "USR-B"])
def test_active_usr_from_verity_partuuid(tmp_path: Path, usr: str) -> None:
    root = make_host(tmp_path / "h", usr=usr)
    found = active_usr(root)
    assert found.label == usr and found.source == f"verity.usr=PARTUUID={PARTUUIDS[usr]}"
    assert found.disk == "sda" and found.problems == ()


@pytest.mark.parametrize("usr", ["USR-A", "USR-B"])
def test_active_usr_through_dm_verity_in_sysfs(tmp_path: Path, usr: str) -> None:
    root = make_host(tmp_path / "h", usr=usr)
    write(root / "proc/cmdline", "mount.usr=/dev/mapper/usr root=LABEL=ROOT\n")
    found = active_usr(root)
    number = 3 if usr == "USR-A" else 4
    assert found.label == usr and found.source == f"mount.usr=/dev/mapper/usr in sysfs: dm-0 -> sda{number}"
    write(root / "proc/cmdline", "root=LABEL=ROOT\n")  # nothing about usr: the dm device named usr
    found = active_usr(root)
    assert found.label == usr and found.source.startswith("the device-mapper device 'usr' in sysfs")


def test_cmdline_forms() -> None:
    uuid_b = PARTUUIDS["USR-B"].upper()
    assert parse_cmdline_usr(f"mount.usr=PARTUUID={uuid_b} ro")[0] == "USR-B"
    assert parse_cmdline_usr(f"usr=/dev/disk/by-partuuid/{PARTUUIDS['USR-A']}")[0] == "USR-A"
    assert parse_cmdline_usr("mount.usr=/dev/disk/by-partlabel/USR-B")[0] == "USR-B"
    assert parse_cmdline_usr("mount.usr=/dev/sda3")[2] == "/dev/sda3"


def test_hostile_cmdline_and_release_are_problems_not_crashes(host: Path) -> None:
    write(
        host / "proc/cmdline",
        "verity.usr=PARTUUID=00000000-0000-0000-0000-000000000000 mount.usr=\x1b]0;pwned\x07\n",
    )
    write(host / "usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION=\x1b[2J3815\n")
    (host / "sys/block/dm-0/dm/name").write_text("not-usr\n")  # and no dm device to fall back on
    found = active_usr(host)
    assert found.label is None
    cmdline_path = host / "proc/cmdline"
    assert found.problems[0] == (
        f"{cmdline_path} verity.usr: PARTUUID 00000000-0000-0000-0000-000000000000 is neither "
        f"USR-A ({PARTUUIDS['USR-A']}) nor USR-B ({PARTUUIDS['USR-B']})"
    )
    assert (
        f"{cmdline_path} mount.usr: '\\x1b]0;pwned\\x07' is neither PARTUUID=<uuid> nor a /dev path"
        in found.problems
    )
    release = host / "usr/share/flatcar/release"
    problem = f"{release}: FLATCAR_RELEASE_VERSION='\\x1b[2J3815' is not a version"
    facts = read_facts(host)
    assert problem in facts.problems and facts.version == "3815.2.1"  # os-release still names it
    (host / "etc/os-release").unlink()
    facts = read_facts(host)
    assert problem in facts.problems and facts.version is None


def test_oversized_and_binary_files(host: Path) -> None:
    write(host / "proc/cmdline", b"\xff\xfe" * 40000)
    found = active_usr(host)
    assert f"{host / 'proc/cmdline'}: larger than 16384 bytes; not read" in found.problems
    assert found.label == "USR-A"  # sysfs still tells: dm 'usr' -> sda3
    write(host / "usr/share/flatcar/release", b"FLATCAR_RELEASE_VERSION=\xff\xfe\x00\n")
    (host / "etc/os-release").unlink()
    facts = read_facts(host)
    assert facts.version is None
    assert (
        f"{host / 'usr/share/flatcar/release'}: FLATCAR_RELEASE_VERSION='\ufffd\ufffd\\x00' is not a version"
        in facts.problems
    )


@pytest.mark.parametrize("text", ["", "uninitialized\n", "0F1E2D3C4B5A69788796A5B4C3D2E1F0\n", "x" * 70000])
def test_unusable_machine_id_is_refused_with_the_file_named(host: Path, text: str) -> None:
    write(host / "etc/machine-id", text)
    with pytest.raises(HostFileError, match=str(host / "etc/machine-id")):
        read_facts(host)


def test_cgpt_show_parses_back_what_partitions_prints(tmp_path: Path) -> None:
    disk = Disk.create(tmp_path / "disk", "3815.2.1", b"x")
    disk.write_image("USR-B", b"y", "3850.0.0")
    disk.postinstall("USR-B")
    real_header = (
        "       start        size    part  contents\n"
        "           0           1          PMBR (Boot GUID: 6B2A2B6E-4A2D-4A45-8D8E-3B8F5A9A9F0B)\n"
        '        4096      262144       1  Label: "EFI-SYSTEM"\n'
        "                                  Type: EFI System Partition\n"
        "                                  UUID: 1B6E5B46-0C2B-4C7A-9E0A-6C7E9F1D2A3B\n"
        "                                  Attr: legacy_boot=1\n"
    )
    found, problems = parse_cgpt_show(real_header + cgpt_show(disk).split("\n", 1)[1])
    assert problems == []
    assert [(a.label, a.number, a.priority, a.tries, a.successful) for a in found] == [
        ("USR-A", 3, 1, 0, 1),
        ("USR-B", 4, 2, 1, 0),
    ]


def test_cgpt_show_hostile_attributes() -> None:
    text = (
        '      270336     2097152       3  Label: "USR-A"\n'
        "                                  UUID: 7130C94A-213A-4E5A-8E26-6CCE9662F132\n"
        "                                  Attr: priority=99 tries=0 successful=7\x1b[2J\n"
    )
    (usr_a,), problems = parse_cgpt_show(text, "cgpt show /dev/sda")
    assert (usr_a.priority, usr_a.tries, usr_a.successful) == (None, 0, None)
    assert "cgpt show /dev/sda: USR-A priority=99 is out of range 0-15" in problems
    assert parse_cgpt_show("garbage\x00\n")[1] == ["cgpt show: no USR-A or USR-B partition in the output"]


def test_update_engine_client_status_output() -> None:
    text = (
        "I1204 10:00:00.000000  1234 update_engine_client.cc:245] Querying Update Engine status...\n"
        "LAST_CHECKED_TIME=1795770500\nPROGRESS=0.250000\nCURRENT_OP=UPDATE_STATUS_DOWNLOADING\n"
        "NEW_VERSION=3850.0.0\nNEW_SIZE=412316860\n"
    )
    snapshot, problems = parse_client_status(text)
    assert problems == []
    assert (snapshot.status, snapshot.progress, snapshot.new_version, snapshot.new_size, snapshot.last_checked_time) == (
        "UPDATE_STATUS_DOWNLOADING", 0.25, "3850.0.0", 412316860, 1795770500,
    )  # fmt: skip


def test_hostile_update_engine_values_are_bounded_and_reported() -> None:
    text = "LAST_CHECKED_TIME=99999999999999999999999\nPROGRESS=nan\nCURRENT_OP=\x1b[31mEVIL\nNEW_SIZE=-5\n"
    snapshot, problems = parse_client_status(text, "uec")
    assert (snapshot.last_checked_time, snapshot.progress, snapshot.new_size) == (None, 0.0, None)
    assert snapshot.status == "unknown status: \\x1b[31mEVIL"
    assert "uec: no NEW_VERSION line in the output" in problems
    assert "uec: progress 'nan' is not a number" in problems
    snapshot, problems = snapshot_from_dbus([1, 7.5, "UPDATE_STATUS_NEW_THING", "", 1], "GetStatus")
    assert (snapshot.status, snapshot.progress) == ("UPDATE_STATUS_NEW_THING", 1.0)
    assert problems == [
        "GetStatus: UPDATE_STATUS_NEW_THING is not one of update_engine's statuses; reported as is",
        "GetStatus: progress 7.5 is outside 0..1",
    ]


@pytest.mark.slow
def test_print_reads_the_host_once_without_etcd(host: Path) -> None:
    write(host / "usr/share/flatcar/release", "FLATCAR_RELEASE_VERSION=\x07bad\n")
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "report", "--root", str(host), "--print", "--dbus-address", "unix:path=/nonexistent",
         "--update-engine-client", "/nonexistent/update_engine_client"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["machine_id"], doc["channel"], doc["active_partition"]) == (MACHINE_ID, "beta", "USR-A")
    assert doc["version"] == "3815.2.1"  # the bad release file is reported; os-release still names it
    assert "FLATCAR_RELEASE_VERSION='\\x07bad' is not a version" in result.stderr
    assert "update_engine status unknown" in result.stderr


@pytest.mark.slow
def test_missing_machine_id_exits_1_naming_the_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coreroll", "report", "--root", str(tmp_path), "--print"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"coreroll report: {tmp_path / 'etc/machine-id'}: missing (is --root the host's / ?)"
    )


def test_update_conf_lines_end_only_at_a_newline(host: Path) -> None:
    """Issue 16 defect 1: `GROUP=beta<NEL>SERVER=http://evil/` is one line for update_engine."""
    conf = host / "etc/flatcar/update.conf"
    write(conf, "# written by Ignition\nGROUP=beta\x85SERVER=http://evil/\n".encode())
    view = HostView(host, None)
    doc = view.document(1795770600.0)
    assert (doc["server"], doc["channel"]) == (PUBLIC_SERVER, None)
    assert (
        f"{conf}:2: GROUP 'beta\\x85SERVER=http://evil/' is not a channel name "
        "(1-255 of A-Z a-z 0-9 . _ -, starting with a letter or digit); channel unknown"
    ) in view.problems()


def test_times_beyond_the_dashboards_bound_are_null_and_a_problem(host: Path) -> None:
    """Issue 16 defect 9: a btime or last_checked_time after 9999-12-31 is unknown, with a problem;
    the document is still built (a btime of year 33658 used to stop every status report)."""
    write(host / "proc/stat", "cpu  1 2 3 4\nbtime 999999999999\nprocesses 42\n")
    view = HostView(host, None)
    snapshot, problems = snapshot_from_dbus(
        [2**63 - 1, 0.0, "UPDATE_STATUS_IDLE", "", 253402300800], "GetStatus"
    )
    view.set_engine(snapshot, problems)
    doc = view.document(1795770600.0)
    assert (doc["booted_at"], doc["update"]["last_checked_time"], doc["update"]["new_size"]) == (
        None, None, 253402300800,
    )  # fmt: skip
    assert problems == [
        "GetStatus: last checked time '9223372036854775807' is out of range (0 to 253402300799); unknown"
    ]
    assert (
        f"{host / 'proc/stat'}: btime='999999999999' is out of range (0 to 253402300799); boot time unknown"
        in view.problems()
    )
    snapshot, problems = snapshot_from_dbus([253402300800, 0.0, "UPDATE_STATUS_IDLE", "", 2**63], "GetStatus")
    assert (snapshot.last_checked_time, snapshot.new_size) == (None, None)
    assert len(problems) == 2
