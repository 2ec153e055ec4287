"""etcd servers with TLS or auth, for the client tests (each its own EmbeddedEtcd, module scope)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from coreroll.etcd.launcher import EmbeddedEtcd, free_port
from tests.security.certs import Pki, make_pki


@dataclass(frozen=True)
class TlsEtcd:
    url: str  # https://127.0.0.1:PORT
    pki: Pki
    client_cert_auth: bool


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_etcd(pki: Pki, client_cert_auth: bool) -> Iterator[TlsEtcd]:
    etcd = EmbeddedEtcd()
    tls_port = free_port()
    # Keep a plain listener on the launcher's port (its health check uses it) and add a TLS one;
    # etcd's flags are last-wins, so these override the launcher's own listen/advertise URLs.
    tls_url = f"https://127.0.0.1:{tls_port}"
    etcd.extra_args = [
        "--listen-client-urls", f"http://127.0.0.1:{etcd.client_port},{tls_url}",
        "--advertise-client-urls", tls_url,
        "--cert-file", str(pki.server_cert),
        "--key-file", str(pki.server_key),
        # etcd turns on client certificate checks whenever it is given a trusted CA file.
        *(["--client-cert-auth", "--trusted-ca-file", str(pki.ca)] if client_cert_auth else []),
    ]  # fmt: skip
    with etcd:
        yield TlsEtcd(tls_url, pki, client_cert_auth)


@pytest.fixture(scope="module")
def tls_etcd(pki: Pki) -> Iterator[TlsEtcd]:
    """TLS for server authentication only: a CA file is all a client needs."""
    yield from _tls_etcd(pki, client_cert_auth=False)


@pytest.fixture(scope="module")
def mtls_etcd(pki: Pki) -> Iterator[TlsEtcd]:
    """TLS that also requires a client certificate signed by the CA."""
    yield from _tls_etcd(pki, client_cert_auth=True)


@pytest.fixture(scope="module")
def auth_etcd() -> Iterator[str]:
    """An etcd with v3 authentication on: user root / password `s3cret`."""
    with EmbeddedEtcd() as etcd:
        base = etcd.endpoint
        for path, body in (
            ("/v3/auth/user/add", {"name": "root", "password": "s3cret"}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/enable", {}),
        ):
            httpx.post(base + path, json=body, timeout=5).raise_for_status()
        yield base
