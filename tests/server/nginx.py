"""A real nginx (the Debian package; .ci/run installs it) as the TLS-terminating proxy in front of a
coreroll server: deploy/coreroll-nginx.conf's own ``server`` block, with its address, certificate
and upstream replaced, inside a main configuration of our own (pid, logs and temp files in a
temporary directory, workers as the current user, listening on 127.0.0.1 only).

``Nginx(directory, port, upstream, cert, key)`` starts it and returns once the port accepts
connections; ``.url`` (``https://127.0.0.1:<port>``), ``.stop()``, ``.log()`` (its error log).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "coreroll-nginx.conf"

_MAIN = """daemon off;
worker_processes 1;
{user}pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
{server}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        raise RuntimeError("nginx is not installed (.ci/run installs it: apt-get install nginx)")
    return found


def example_server_block(port: int, upstream: str, cert: Path, key: Path) -> str:
    """deploy/coreroll-nginx.conf's server block for this test; each replaced line must be there."""
    text = EXAMPLE.read_text()
    block = text[text.index("server {") :]
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("ssl_certificate /etc/ssl/coreroll/fullchain.pem;", f"ssl_certificate {cert};"),
        ("ssl_certificate_key /etc/ssl/coreroll/privkey.pem;", f"ssl_certificate_key {key};"),
        ("proxy_pass http://127.0.0.1:8400;", f"proxy_pass {upstream};"),
    ):
        if old not in block:
            raise AssertionError(f"{EXAMPLE} no longer has the line {old!r} this test replaces")
        block = block.replace(old, new)
    return block


class Nginx:
    def __init__(self, directory: Path, port: int, upstream: str, cert: Path, key: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tmp").mkdir(exist_ok=True)
        self.directory = directory
        self.url = f"https://127.0.0.1:{port}"
        # As root, nginx would run its workers as "nobody", who cannot write our temp directory.
        user = ""
        if os.geteuid() == 0:
            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
        config = directory / "nginx.conf"
        server = example_server_block(port, upstream, cert, key)
        config.write_text(_MAIN.format(user=user, dir=directory, server=server))
        argv = [nginx_binary(), "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not self._accepts(port):  # nginx says nothing when ready: its port is the signal
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {self.log()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"nginx did not listen on 127.0.0.1:{port} within 15 s: {self.log()[-2000:]}"
                )
            time.sleep(0.02)

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown: it closes its connections at once
            self.process.wait(timeout=10)
