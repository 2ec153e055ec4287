"""set-channel on a host's files: a symlinked update.conf is written through (the link kept), a
file that cannot be read is never written, and the file keeps its mode and owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from coreroll.host.commands import HostCommands
from tests.host.fakehost import ETC_UPDATE_CONF, write


class Recorder:
    def __init__(self) -> None:
        self.restarts = 0
        self.changes = 0

    async def restart(self) -> str:
        self.restarts += 1
        return "restarted"

    async def changed(self) -> None:
        self.changes += 1


def commands(host: Path, recorder: Recorder) -> HostCommands:
    engine: Any = None  # set-channel never talks to update_engine
    return HostCommands(host, engine, recorder.restart, recorder.changed)


async def test_symlinked_update_conf_is_written_through_under_the_root(host: Path) -> None:
    conf = host / "etc/flatcar/update.conf"
    conf.unlink()
    target = write(host / "etc/coreos/update.conf", ETC_UPDATE_CONF)
    os.symlink("/etc/coreos/update.conf", conf)  # absolute, as on the host: it must resolve under the root
    recorder = Recorder()
    result, refused = await commands(host, recorder).set_channel({"channel": "alpha"})
    assert not refused and result == f"GROUP beta -> alpha in {target}; restarted"
    assert conf.is_symlink() and target.read_text() == ETC_UPDATE_CONF.replace("GROUP=beta", "GROUP=alpha")
    assert (recorder.restarts, recorder.changes) == (1, 1)


async def test_unreadable_update_conf_is_not_written(host: Path) -> None:
    conf = host / "etc/flatcar/update.conf"
    conf.unlink()
    conf.mkdir()  # not a file: reading fails
    recorder = Recorder()
    result, refused = await commands(host, recorder).set_channel({"channel": "alpha"})
    assert refused and result == f"set-channel refused: {conf}: a directory, not a regular file; not read"
    assert conf.is_dir() and os.listdir(conf) == [] and recorder.restarts == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")
async def test_a_channel_switch_keeps_update_conf_mode_and_owner(host: Path) -> None:
    """Issue 16 defect 4: the switch used to leave update.conf 0600 and owned by the reporter."""
    conf = host / "etc/flatcar/update.conf"
    os.chmod(conf, 0o644)
    os.chown(conf, 500, 500)
    recorder = Recorder()
    result, refused = await commands(host, recorder).set_channel({"channel": "alpha"})
    assert not refused, result
    st = conf.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, 500, 500)
    conf.unlink()  # no /etc/flatcar/update.conf yet: created as Flatcar ships it
    result, refused = await commands(host, recorder).set_channel({"channel": "beta"})
    assert not refused, result
    st = conf.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, conf.read_text()) == (0o644, 0, "GROUP=beta\n")
