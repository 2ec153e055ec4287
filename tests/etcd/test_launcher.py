"""EmbeddedEtcd's start: a start that a signal ended before etcd was healthy is tried once more
(seen rarely on loaded machines: SIGABRT, nothing in etcd's log); any other failure is reported at
once, with etcd's last log lines."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from coreroll.etcd.launcher import EmbeddedEtcd, EtcdStartError, find_etcd_binary


def wrapper(tmp_path: Path, first_start: str) -> Path:
    """An `etcd` that runs `first_start` (shell) the first time and the real etcd after that;
    every start is counted in `starts`."""
    script = tmp_path / "etcd"
    script.write_text(
        "#!/bin/sh\n"
        f'echo start >> "{tmp_path}/starts"\n'
        f'if [ ! -e "{tmp_path}/once" ]; then : > "{tmp_path}/once"; {first_start}; fi\n'
        f'exec "{find_etcd_binary()}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def starts(tmp_path: Path) -> int:
    return len((tmp_path / "starts").read_text().splitlines())


def test_a_start_killed_by_a_signal_is_tried_once_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    etcd = EmbeddedEtcd(data_dir=tmp_path / "data", binary=str(wrapper(tmp_path, "kill -ABRT $$")))
    with caplog.at_level(logging.WARNING), etcd:
        assert etcd.running
    assert starts(tmp_path) == 2
    assert "killed by signal 6 before it was healthy" in caplog.text


def test_a_start_that_exits_is_reported_at_once(tmp_path: Path) -> None:
    script = wrapper(tmp_path, "echo 'bad flag --nope' >&2; exit 1")
    with pytest.raises(EtcdStartError, match=r"exited with status 1 before it was healthy: bad flag --nope"):
        EmbeddedEtcd(data_dir=tmp_path / "data", binary=str(script)).start()
    assert starts(tmp_path) == 1
