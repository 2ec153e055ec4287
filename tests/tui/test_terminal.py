"""Over SSH the terminal can vanish: the dashboard must exit, not spin. Runs `python -m coreroll dash` on a
real pseudo-terminal, waits for it to draw, then hangs up (SIGHUP) or closes the terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux pty"), pytest.mark.slow]


def spawn(*command: str) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard against an etcd that is not there (shown as DOWN)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", *command, "--etcd", "http://127.0.0.1:9"])
    return pid, fd


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not drawn within {timeout}s; got {seen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def wait_exit(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the dashboard did not exit within {timeout}s")


@pytest.mark.parametrize(
    ("command", "how"),
    [(("coreroll", "dash"), "sighup"), (("coreroll", "dash"), "close-terminal"), (("coreroll",), "sighup")],
)
def test_exits_when_the_terminal_goes_away(command: tuple[str, ...], how: str) -> None:
    """`coreroll dash` and plain `coreroll` (no subcommand: the dashboard) both exit cleanly."""
    pid, fd = spawn(*command)
    try:
        read_until(fd, b"etcd", 30)
        if how == "sighup":
            os.kill(pid, signal.SIGHUP)
        else:
            os.close(fd)
        status = wait_exit(pid, 15)
        # a clean exit (terminal restored, sources stopped), not death by the signal
        assert os.WIFEXITED(status), f"killed by signal {os.WTERMSIG(status)}"
    finally:
        if how == "sighup":
            os.close(fd)
