"""A host root with symlinks that lead out of it and FIFOs where files belong (issue 16, defects 7
and 8): nothing outside the root is read or written, and nothing blocks; each is a problem (or,
for the machine id, the refusal) naming the path."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from coreroll.host.facts import HostFileError, read_facts
from coreroll.host.usr import active_usr
from coreroll.host.view import HostView
from tests.host.fakehost import make_host, write
from tests.host.helpers import without_hanging
from tests.host.test_commands import Recorder, commands

PUBLIC_SERVER = "https://public.update.flatcar-linux.net/v1/update/"  # /usr/share/flatcar/update.conf's


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files beside the host root, as a hostile link would reach them."""
    write(tmp_path / "outside/update.conf", "SERVER=http://evil/\nGROUP=evil\n")
    write(tmp_path / "outside/machine-id", "ffffffffffffffffffffffffffffffff\n")
    write(tmp_path / "outside/name", "usr\n")
    return tmp_path / "outside"


def test_a_relative_symlink_out_of_the_root_is_not_followed(host: Path, outside: Path) -> None:
    conf = host / "etc/flatcar/update.conf"
    conf.unlink()
    os.symlink("../../../outside/update.conf", conf)  # host/etc/flatcar -> the directory above host
    view = HostView(host, None)
    doc = view.document(1795770600.0)
    assert (doc["server"], doc["channel"]) == (PUBLIC_SERVER, "stable")  # /usr/share/flatcar's
    assert f"{conf}: leads outside {host}; not followed" in view.problems()


def test_an_absolute_symlink_starts_again_at_the_root(host: Path, outside: Path) -> None:
    conf = host / "etc/flatcar/update.conf"
    conf.unlink()
    os.symlink(str(outside / "update.conf"), conf)  # on the host that path is host/<outside>: absent
    view = HostView(host, None)
    doc = view.document(1795770600.0)
    assert (doc["server"], doc["channel"]) == (PUBLIC_SERVER, "stable")
    assert view.problems() == []


def test_a_machine_id_symlink_out_of_the_root_is_refused(host: Path, outside: Path) -> None:
    machine_id = host / "etc/machine-id"
    machine_id.unlink()
    os.symlink("../../outside/machine-id", machine_id)
    with pytest.raises(HostFileError) as refused:
        read_facts(host)
    assert str(refused.value) == f"{machine_id}: leads outside {host}; not followed"


def test_a_sysfs_symlink_out_of_the_root_is_not_followed(host: Path, outside: Path) -> None:
    write(host / "proc/cmdline", "mount.usr=/dev/mapper/usr root=LABEL=ROOT\n")  # sysfs must tell
    name = host / "sys/block/dm-0/dm/name"
    name.unlink()
    os.symlink("../../../../../outside/name", name)
    found = active_usr(host)
    assert found.label is None
    assert f"{host / 'sys/class/block/dm-0/dm/name'}: leads outside {host}; not followed" in found.problems


async def test_set_channel_through_a_relative_symlink_out_of_the_root_is_refused(
    host: Path, outside: Path
) -> None:
    conf = host / "etc/flatcar/update.conf"
    conf.unlink()
    os.symlink("../../../outside/update.conf", conf)
    recorder = Recorder()
    result, refused = await commands(host, recorder).set_channel({"channel": "alpha"})
    assert refused and result == f"set-channel refused: {conf}: leads outside {host}; not followed"
    assert (outside / "update.conf").read_text() == "SERVER=http://evil/\nGROUP=evil\n"
    assert conf.is_symlink() and recorder.restarts == 0


def fifo_instead_of(root: Path, relative: str) -> Path:
    path = root / relative
    path.unlink()
    os.mkfifo(path)
    return path


def test_a_fifo_as_machine_id_is_refused_naming_it(host: Path) -> None:
    fifo = fifo_instead_of(host, "etc/machine-id")
    with pytest.raises(HostFileError) as refused:
        without_hanging(lambda: read_facts(host), [fifo])
    assert str(refused.value) == f"{fifo}: a FIFO, not a regular file; not read"


@pytest.mark.parametrize(
    "relative",
    [
        "etc/flatcar/update.conf",
        "usr/share/flatcar/update.conf",
        "usr/share/flatcar/release",
        "etc/hostname",
        "proc/stat",
        "proc/sys/kernel/random/boot_id",
        "proc/cmdline",
        "sys/block/sda/sda3/uevent",
    ],
)
def test_a_fifo_in_place_of_a_host_file_is_a_problem_naming_it(tmp_path: Path, relative: str) -> None:
    host = make_host(tmp_path / "host")
    fifo = fifo_instead_of(host, relative)
    facts, usr = without_hanging(lambda: (read_facts(host), active_usr(host)), [fifo])
    problems = [*facts.problems, *usr.problems]
    assert any(str(fifo) in p and p.endswith(": a FIFO, not a regular file; not read") for p in problems), (
        problems
    )
    assert facts.machine_id  # the rest is still read


def test_set_channel_refuses_a_fifo_as_update_conf(host: Path) -> None:
    fifo = fifo_instead_of(host, "etc/flatcar/update.conf")
    recorder = Recorder()
    switch = commands(host, recorder).set_channel
    result, refused = without_hanging(lambda: asyncio.run(switch({"channel": "alpha"})), [fifo])
    assert refused and result == f"set-channel refused: {fifo}: a FIFO, not a regular file; not read"
    assert fifo.is_fifo() and recorder.restarts == 0
