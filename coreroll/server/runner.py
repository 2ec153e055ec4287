"""Running the server: in a thread (tests, fleet, demo, dashboard tests), as a subprocess (kill -9
tests), or in the foreground (``coreroll server``).

- ``run_server_in_thread(settings) -> RunningServer``: uvicorn on 127.0.0.1 and a free port
  (``settings.listen`` is rewritten to it; https with ``settings.tls_cert``), returns once the
  server answers; ``RunningServer.url``,
  ``.token``, ``.settings``, ``.stop()``; also a context manager.
- ``start_server_process(data_dir, db_url=None, token=None, extra_args=(), open_files=None) ->
  ServerProcess``: runs ``python -m coreroll server`` on a free port in a child process (with that
  open-file limit) and waits until it is healthy;
  ``.url``, ``.token``, ``.kill()`` (SIGKILL), ``.stop()`` (SIGTERM), ``.pid``.
- ``serve_forever(settings)``: blocking, with SIGINT/SIGTERM ending it cleanly (open feed streams
  are closed so shutdown does not wait on them).
- ``free_port()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from coreroll.server.app import create_app
from coreroll.server.auth import load_or_create_token
from coreroll.server.connguard import SWEEP_TICKS, ConnectionGuard, ConnectionLimits, guarded_protocol
from coreroll.server.one_write import one_write_protocol
from coreroll.server.settings import ServerSettings, parse_listen


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn.Server that also tells the app to end its feed streams when asked to exit, and
    applies the connection bounds (``coreroll.server.connguard``) on its main loop's ticks."""

    def __init__(self, config: uvicorn.Config, guard: ConnectionGuard) -> None:
        super().__init__(config)
        self.guard = guard

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = self._app_state()
        if state is not None:
            state.stopping.set()
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if counter % SWEEP_TICKS == 0:
            connections = self.server_state.connections
            self.guard.sweep(connections)
            state = self._app_state()
            if state is not None:
                state.metrics.connections.set(len(connections))
        return await super().on_tick(counter)

    def _app_state(self) -> Any:
        """coreroll's AppState (None before the app has started); config.app is our FastAPI app,
        which uvicorn types as any ASGI app or import string."""
        return getattr(getattr(self.config.app, "state", None), "core", None)


def _server(settings: ServerSettings, **extra: Any) -> _Server:
    host, port = parse_listen(settings.listen)
    if settings.tls_cert is not None:
        extra.setdefault("ssl_certfile", str(settings.tls_cert))
        extra.setdefault("ssl_keyfile", str(settings.tls_key))
    app = create_app(settings)

    def count_drop(reason: str) -> None:
        state = getattr(app.state, "core", None)
        if state is not None:
            state.metrics.connections_dropped.labels(reason).inc()

    limits = ConnectionLimits(
        settings.max_connections, settings.header_timeout, settings.body_timeout, settings.write_timeout
    )
    guard = ConnectionGuard(limits, count_drop)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        proxy_headers=False,  # X-Forwarded-For is honoured only from --trusted-proxy, by app.client_ip()
        lifespan="on",
        # uvicorn's own limit_concurrency is not used: it counts half-open connections too and
        # answers 503 to everyone once they fill it; the guard's cap closes those first.
        http=guarded_protocol(one_write_protocol(AutoHTTPProtocol), guard),
        ws="none",  # no WebSocket routes: an Upgrade is an ordinary request
        timeout_keep_alive=settings.keep_alive_timeout,  # pyright: ignore[reportArgumentType]  # annotated int; uvicorn only hands it to call_later, a float works
        **extra,
    )
    return _Server(config, guard)


@dataclass
class RunningServer:
    url: str
    token: str
    settings: ServerSettings
    _server: _Server
    _thread: threading.Thread
    _loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        if self._loop is not None and not self._server.should_exit:
            self._loop.call_soon_threadsafe(self._server.handle_exit, signal.SIGTERM, None)
        self._thread.join(timeout=15)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_server_in_thread(settings: ServerSettings, timeout: float = 20.0) -> RunningServer:
    """Start the server in a daemon thread on 127.0.0.1:<free port> and wait until it is up."""
    settings = replace(settings, listen=f"127.0.0.1:{free_port()}")
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = load_or_create_token(settings)
    settings.token = token
    server = _server(settings)
    loop_box: list[asyncio.AbstractEventLoop] = []
    failure: list[BaseException] = []

    def run() -> None:
        factory = server.config.get_loop_factory()  # uvloop when installed, as `uvicorn` runs
        loop = factory() if factory is not None else asyncio.new_event_loop()
        loop_box.append(loop)
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"coreroll-server-{settings.listen}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"coreroll server failed to start: {failure[0] if failure else 'exited'}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"coreroll server did not start within {timeout} s")
        time.sleep(0.01)
    return RunningServer(
        f"{settings.scheme}://{settings.listen}", token, settings, server, thread, loop_box[0]
    )


def serve_forever(settings: ServerSettings) -> bool:
    """Serve until SIGINT/SIGTERM; False when the server could not start (the error is logged)."""
    server = _server(settings)
    try:
        server.run()  # uvloop + httptools when installed
    except SystemExit:  # uvicorn exits this way when startup (e.g. opening the database) fails
        return False
    return server.started


@dataclass
class ServerProcess:
    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _open_file_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def start_server_process(
    data_dir: Path,
    db_url: str | None = None,
    token: str = "test-token",
    extra_args: tuple[str, ...] = (),
    open_files: int | None = None,
) -> ServerProcess:
    """``open_files``: the child's open-file limit (soft and hard), as systemd's LimitNOFILE sets it."""
    server = spawn_server_process(data_dir, db_url, token, extra_args, open_files)
    wait_until_healthy(server)
    return server


def spawn_server_process(
    data_dir: Path,
    db_url: str | None = None,
    token: str = "test-token",
    extra_args: tuple[str, ...] = (),
    open_files: int | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``coreroll server`` in a child process (``env``: extra variables) without waiting for it."""
    port = free_port()
    argv = [sys.executable, "-m", "coreroll.server", "--listen", f"127.0.0.1:{port}",
            "--data", str(data_dir), *extra_args]  # fmt: skip
    if db_url:
        argv += ["--db", db_url]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log:  # a file, not a pipe: a chatty child can never block on it
        preexec = None if open_files is None else _open_file_limit(open_files)
        # COREROLL_TOKEN, not --token: a command line is public
        child_env = {**os.environ, "COREROLL_TOKEN": token, **(env or {})}
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=child_env, preexec_fn=preexec)
    return ServerProcess(f"http://127.0.0.1:{port}", token, data_dir, process)


def wait_until_healthy(server: ServerProcess, timeout: float = 30.0) -> None:
    """Wait until ``/healthz`` answers 200; RuntimeError (with the log's tail) when the child exits."""
    log_path = server.data_dir / "server.log"
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            err = log_path.read_text(errors="replace")
            raise RuntimeError(
                f"coreroll server exited with {server.process.returncode}: {err.strip()[-500:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            server.process.kill()
            raise RuntimeError(f"coreroll server process did not become healthy within {timeout:g} s")
        time.sleep(0.05)
