"""A Flatcar host's files under a directory, as `coreroll report --root` reads them, and fake host
tools (cgpt, update_engine_client) as executable scripts that record their arguments."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from coreroll.node.partitions import PARTUUIDS, Disk, cgpt_show

MACHINE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BOOT_ID = "5b0d6a3e-9c1f-4e2a-8b7d-1a2b3c4d5e6f"

# the update.conf a real host has in /etc/flatcar: an unknown key and a comment to keep
ETC_UPDATE_CONF = """# written by Ignition
GROUP=beta
SERVER=http://127.0.0.1:8400/v1/update/
REBOOT_STRATEGY=etcd-lock
LOCKSMITHD_GROUP=workers
MACHINE_ALIAS="rack 7, slot 3"
DOWNLOAD_USER=ops
"""


def cmdline(usr: str) -> str:
    """Flatcar's kernel command line with dm-verity, booted from `usr`."""
    return (
        "BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr "
        f"verity.usr=PARTUUID={PARTUUIDS[usr]} rootflags=rw mount.usrflags=ro consoleblank=0 "
        "root=LABEL=ROOT console=ttyS0,115200n8 flatcar.first_boot=detected verity.usrhash=abc123\n"
    )


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def make_host(root: Path, *, usr: str = "USR-A", version: str = "3815.2.1") -> Path:
    """Files as on a Flatcar host booted from `usr` running `version`, with sysfs for sda3/sda4
    and dm-0 (the dm-verity device `usr`, on top of the booted partition)."""
    write(root / "etc/machine-id", MACHINE_ID + "\n")
    write(root / "etc/hostname", "worker-7\n")
    write(
        root / "usr/share/flatcar/release",
        f"FLATCAR_RELEASE_VERSION={version}\nFLATCAR_RELEASE_BOARD=amd64-usr\nFLATCAR_RELEASE_APPID={{e96281a6-d1af-4bde-9a0a-97b76e56dc57}}\n",
    )
    write(
        root / "etc/os-release", f'NAME="Flatcar Container Linux by Kinvolk"\nID=flatcar\nVERSION={version}\n'
    )
    write(
        root / "usr/share/flatcar/update.conf",
        "GROUP=stable\nSERVER=https://public.update.flatcar-linux.net/v1/update/\n",
    )
    write(root / "etc/flatcar/update.conf", ETC_UPDATE_CONF)
    write(root / "proc/cmdline", cmdline(usr))
    write(root / "proc/sys/kernel/random/boot_id", BOOT_ID + "\n")
    write(root / "proc/stat", "cpu  1 2 3 4\nbtime 1795770000\nprocesses 42\n")
    make_sysfs(root, usr)
    return root


def make_sysfs(root: Path, usr: str) -> None:
    block = root / "sys/block"
    write(block / "sda/dev", "8:0\n")
    for label, number in (("USR-A", 3), ("USR-B", 4)):
        part = block / "sda" / f"sda{number}"
        write(
            part / "uevent",
            f"MAJOR=8\nMINOR={number}\nDEVNAME=sda{number}\nDEVTYPE=partition\nPARTN={number}\nPARTNAME={label}\n",
        )
        write(part / "partition", f"{number}\n")
    dm = block / "dm-0"
    write(dm / "dm/name", "usr\n")
    (dm / "slaves").mkdir(parents=True, exist_ok=True)
    os.symlink(
        f"../../sda/sda{3 if usr == 'USR-A' else 4}", dm / "slaves" / f"sda{3 if usr == 'USR-A' else 4}"
    )
    classes = root / "sys/class/block"
    classes.mkdir(parents=True, exist_ok=True)
    for name, target in (("sda", "sda"), ("sda3", "sda/sda3"), ("sda4", "sda/sda4"), ("dm-0", "dm-0")):
        os.symlink(f"../../block/{target}", classes / name)


def executable(path: Path, script: str) -> Path:
    write(path, "#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_cgpt(bin_dir: Path, state: Path, booted: str = "USR-A") -> Path:
    """A `cgpt` that prints the table coreroll's own cgpt_show prints for a disk in `state`
    (USR-B freshly installed: priority 2 tries 1 successful 0 when booted from USR-A)."""
    disk = Disk.create(state, "3815.2.1", b"image")
    disk.write_image("USR-B", b"new", "3850.0.0")
    disk.postinstall("USR-B")
    table = write(state / "cgpt-show.txt", cgpt_show(disk))
    return executable(bin_dir / "cgpt", f'echo "$@" >> "{state}/cgpt-args"\ncat "{table}"\n')
