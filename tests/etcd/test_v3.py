"""connect_v3 against real etcd servers: failover, unreachable, CA-only TLS, client certs, user/password."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdConfigError, EtcdUnavailableError
from coreroll.etcd.v3 import connect_v3, get_at_revision, members_target
from coreroll.locks import open_lock_store
from tests.etcd.conftest import TlsEtcd
from tests.security.certs import make_pki

pytestmark = pytest.mark.slow

DEAD = "http://127.0.0.1:9"


async def test_failover_to_the_next_endpoint(clean_etcd: str) -> None:
    client = await connect_v3(EtcdConfig(endpoints=(DEAD, clean_etcd), timeout=2))
    try:
        assert client.endpoint == clean_etcd
        await client.put(b"k", b"v")
        assert (await client.get(b"k")).value == b"v"
    finally:
        await client.close()


async def test_unreachable_names_every_endpoint_within_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(EtcdUnavailableError) as caught:
        await connect_v3(EtcdConfig(endpoints=(DEAD, "http://127.0.0.1:7"), timeout=1.5))
    assert time.monotonic() - started < 4
    assert str(caught.value).startswith(
        "no etcd endpoints available, tried: http://127.0.0.1:9,http://127.0.0.1:7 ("
    )
    assert caught.value.endpoints == (DEAD, "http://127.0.0.1:7")


async def test_get_at_revision_reads_history(clean_etcd: str) -> None:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    try:
        first = (await client.put(b"h", b"1")).header.revision
        second = (await client.put(b"h", b"2")).header.revision
        assert (await get_at_revision(client, b"h", first)).value == b"1"
        assert (await get_at_revision(client, b"h", second)).value == b"2"
        assert await get_at_revision(client, b"h", first - 1) is None
    finally:
        await client.close()


async def test_ca_only_tls(tls_etcd: TlsEtcd) -> None:
    # locksmithctl cannot do this (it insists on a client key pair); we can.
    store = open_lock_store(EtcdConfig(endpoints=(tls_etcd.url,), cafile=str(tls_etcd.pki.ca)))
    try:
        await store.lock("tls", "m1")
        assert (await store.get("tls"))[0].holders == ["m1"]
    finally:
        await store.close()


async def test_tls_with_an_unknown_ca_is_refused(tls_etcd: TlsEtcd, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", "other")
    with pytest.raises(EtcdUnavailableError, match=tls_etcd.url):
        await connect_v3(EtcdConfig(endpoints=(tls_etcd.url,), cafile=str(other.ca), timeout=2))


async def test_client_certificate_tls(mtls_etcd: TlsEtcd) -> None:
    pki = mtls_etcd.pki
    with pytest.raises(EtcdUnavailableError):
        await connect_v3(EtcdConfig(endpoints=(mtls_etcd.url,), cafile=str(pki.ca), timeout=2))
    config = EtcdConfig(
        endpoints=(mtls_etcd.url,),
        cafile=str(pki.ca),
        certfile=str(pki.client_cert),
        keyfile=str(pki.client_key),
    )
    client = await connect_v3(config)
    try:
        await client.put(b"mtls", b"ok")
        assert (await client.get(b"mtls")).value == b"ok"
    finally:
        await client.close()


async def test_missing_tls_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(EtcdConfigError, match=f"cannot read etcd CA file {missing}"):
        await connect_v3(EtcdConfig(endpoints=("https://127.0.0.1:9",), cafile=str(missing)))


async def test_user_and_password(auth_etcd: str) -> None:
    with pytest.raises(EtcdConfigError, match="refused the credentials"):
        await connect_v3(EtcdConfig(endpoints=(auth_etcd,), username="root", password="wrong"))
    store = open_lock_store(EtcdConfig(endpoints=(auth_etcd,), username="root", password="s3cret"))
    try:
        await store.set_max("auth", 2)
        assert (await store.get("auth"))[0].max == 2
    finally:
        await store.close()
    anonymous = open_lock_store(EtcdConfig(endpoints=(auth_etcd,), timeout=2))
    try:
        with pytest.raises(Exception, match=r"user name is empty|permission denied|token"):
            await asyncio.wait_for(anonymous.get("auth"), 5)
    finally:
        await anonymous.close()


def test_cli_ca_only_tls_and_one_line_failure(tls_etcd: TlsEtcd, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "coreroll", "lock", "--endpoint", tls_etcd.url]
    ok = subprocess.run(
        [*base, "--etcd-cafile", str(tls_etcd.pki.ca), "status"], capture_output=True, text=True
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "Available: 1\nMax: 1\n", "")
    other = make_pki(tmp_path / "other", "other")
    bad = subprocess.run([*base, "--etcd-cafile", str(other.ca), "status"], capture_output=True, text=True)
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr.count("\n") == 1  # gRPC's own handshake logging stays quiet
    assert bad.stderr.startswith(
        f"Error initializing etcd client: no etcd endpoints available, tried: {tls_etcd.url} ("
    )


def test_members_target_lists_every_ip_member_with_the_answering_one_first() -> None:
    members = ("http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2380")
    assert members_target(members[1], members) == "ipv4:10.0.0.2:2379,10.0.0.1:2379,10.0.0.3:2380"
    assert members_target("https://[fd00::1]:2379", ("https://[fd00::1]:2379", "https://[fd00::2]")) == (
        "ipv6:[fd00::1]:2379,[fd00::2]:2379"
    )
    assert members_target(members[0], members[:1]) is None  # one member: a plain target
    assert members_target("http://etcd-1:2379", ("http://etcd-1:2379", "http://10.0.0.2:2379")) is None
    assert members_target("http://10.0.0.1:2379", ("http://10.0.0.1:2379", "https://10.0.0.2:2379")) is None
    assert members_target("http://10.0.0.1:2379", ("http://10.0.0.1:2379", "http://[fd00::2]:2379")) is None
