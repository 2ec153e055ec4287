"""etcd over TLS (CA-only and mutual) and with user/password auth, against real etcd members:
through connect_v3, V2Client and `coreroll lock status`. Wrong CA, missing client certificate and
wrong password each give one clear line on stderr and exit status 1, and write nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from coreroll.cli import main
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdError
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v2 import V2Client
from coreroll.etcd.v3 import connect_v3
from coreroll.locks import semaphore_key
from tests.faults.counts import check, record
from tests.security.certs import Pki
from tests.security.conftest import ROOT_PASSWORD, TLSEtcd

pytestmark = pytest.mark.slow

KEY = semaphore_key("")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def lock_cli(capfd: pytest.CaptureFixture[str]):
    def run(*argv: str) -> Run:
        code = main(["lock", *argv])
        captured = capfd.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def lock_process(*argv: str) -> Run:
    """`coreroll lock` in a fresh process: what a user's terminal shows, including anything gRPC's
    C core would print on its own (in-process, grpc may have been imported earlier)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRPC_", "LOCKSMITHCTL_", "COREROLL_"))}
    done = subprocess.run([sys.executable, "-m", "coreroll", "lock", *argv], capture_output=True, text=True,
                          timeout=60, env=env)  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


def cli_for(api: str, lock_cli):  # type: ignore[no-untyped-def]
    """TLS failures on v3 go through gRPC: check those in a real process."""
    return lock_process if api == "v3" else lock_cli


def assert_one_line_refusal(run: Run, *needles: str) -> None:
    record("bad_credentials_refused", suite="security")
    lines = run.err.strip().splitlines()
    ok = (
        run.code == 1
        and run.out == ""
        and len(lines) == 1
        and all(n.lower() in lines[0].lower() for n in needles)
        and "Traceback" not in run.err
    )
    check("refusal_is_one_clear_line_exit_1", [] if ok else [repr(run)], suite="security")
    assert run.code == 1, run
    assert run.out == ""
    assert len(lines) == 1, f"expected one line on stderr, got: {run.err!r}"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


async def v3_roundtrip(config: EtcdConfig, key: bytes) -> bytes:
    client = await connect_v3(config)
    try:
        await client.put(key, b"tls-ok")
        got = await client.get(key)
        assert got is not None
        return bytes(got.value)
    finally:
        await client.close()


# ---- server-authenticated TLS: the CA alone is enough (unlike locksmithctl) ----


async def test_v3_with_ca_only(tls_etcd: TLSEtcd, pki: Pki) -> None:
    config = EtcdConfig(endpoints=(tls_etcd.endpoint,), cafile=str(pki.ca))
    assert await v3_roundtrip(config, b"sec/ca-only") == b"tls-ok"


async def test_v2_with_ca_only(tls_etcd: TLSEtcd, pki: Pki) -> None:
    config = EtcdConfig(endpoints=(tls_etcd.endpoint,), api="v2", cafile=str(pki.ca))
    async with V2Client(config) as client:
        await client.put("sec/ca-only", "v2-ok")
        assert (await client.get("sec/ca-only")).node.value == "v2-ok"


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_status_with_ca_only(tls_etcd: TLSEtcd, pki: Pki, api: str, lock_cli) -> None:
    run = lock_cli("status", "--endpoint", tls_etcd.endpoint, "--etcd-api", api, "--etcd-cafile", str(pki.ca))
    assert run == Run(0, "Available: 1\nMax: 1\n", "")


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_status_wrong_ca_is_one_line(tls_etcd: TLSEtcd, other_pki: Pki, api: str, lock_cli) -> None:
    run = cli_for(api, lock_cli)(
        "status", "--endpoint", tls_etcd.endpoint, "--etcd-api", api, "--etcd-cafile", str(other_pki.ca)
    )
    assert_one_line_refusal(run, tls_etcd.endpoint)


async def test_v3_wrong_ca_raises_naming_the_endpoint(tls_etcd: TLSEtcd, other_pki: Pki) -> None:
    config = EtcdConfig(endpoints=(tls_etcd.endpoint,), cafile=str(other_pki.ca), timeout=2.0)
    with pytest.raises(EtcdError, match=tls_etcd.endpoint):
        await connect_v3(config)
    record("bad_credentials_refused", suite="security")


def test_plain_http_to_a_tls_etcd_fails_cleanly(tls_etcd: TLSEtcd, lock_cli) -> None:
    plain = tls_etcd.endpoint.replace("https://", "http://")
    assert_one_line_refusal(lock_cli("status", "--endpoint", plain), plain)


def test_missing_ca_file_is_one_line(tls_etcd: TLSEtcd, lock_cli, tmp_path) -> None:
    missing = tmp_path / "nope.crt"
    run = lock_cli("status", "--endpoint", tls_etcd.endpoint, "--etcd-cafile", str(missing))
    assert_one_line_refusal(run, str(missing))


# ---- mutual TLS: a client certificate signed by the CA is required ----


async def test_v3_and_v2_with_client_certificate(mtls_etcd: TLSEtcd, pki: Pki) -> None:
    files = {"cafile": str(pki.ca), "certfile": str(pki.client_cert), "keyfile": str(pki.client_key)}
    v3 = EtcdConfig(endpoints=(mtls_etcd.endpoint,), **files)
    assert await v3_roundtrip(v3, b"sec/mtls") == b"tls-ok"
    async with V2Client(EtcdConfig(endpoints=(mtls_etcd.endpoint,), api="v2", **files)) as client:
        await client.put("sec/mtls", "v2-mtls")
        assert (await client.get("sec/mtls")).node.value == "v2-mtls"


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_with_client_certificate(mtls_etcd: TLSEtcd, pki: Pki, api: str, lock_cli) -> None:
    flags = ["--endpoint", mtls_etcd.endpoint, "--etcd-api", api, "--etcd-cafile", str(pki.ca),
             "--etcd-certfile", str(pki.client_cert), "--etcd-keyfile", str(pki.client_key)]  # fmt: skip
    assert lock_cli("lock", "m-" + api, *flags).code == 0
    run = lock_cli("status", *flags)
    assert run.code == 0 and f"m-{api}" in run.out
    assert lock_cli("unlock", "m-" + api, *flags).code == 0


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_mtls_without_client_certificate_is_refused(mtls_etcd: TLSEtcd, pki: Pki, api: str, lock_cli) -> None:
    run = cli_for(api, lock_cli)(
        "status", "--endpoint", mtls_etcd.endpoint, "--etcd-api", api, "--etcd-cafile", str(pki.ca)
    )
    assert_one_line_refusal(run, mtls_etcd.endpoint)


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_mtls_with_a_foreign_client_certificate_is_refused(
    mtls_etcd: TLSEtcd, pki: Pki, other_pki: Pki, api: str, lock_cli
) -> None:
    run = cli_for(api, lock_cli)(
        "status", "--endpoint", mtls_etcd.endpoint, "--etcd-api", api, "--etcd-cafile", str(pki.ca),
        "--etcd-certfile", str(other_pki.client_cert), "--etcd-keyfile", str(other_pki.client_key),
    )  # fmt: skip
    assert_one_line_refusal(run, mtls_etcd.endpoint)


def test_certfile_without_keyfile_is_a_usage_refusal(mtls_etcd: TLSEtcd, pki: Pki, lock_cli) -> None:
    run = lock_cli("status", "--endpoint", mtls_etcd.endpoint, "--etcd-cafile", str(pki.ca),
                   "--etcd-certfile", str(pki.client_cert))  # fmt: skip
    assert_one_line_refusal(run, "keyfile")


# ---- user/password ----


async def test_v3_with_password(auth_etcd: EmbeddedEtcd) -> None:
    config = EtcdConfig(endpoints=(auth_etcd.endpoint,), username="root", password=ROOT_PASSWORD)
    assert await v3_roundtrip(config, b"sec/auth") == b"tls-ok"


async def test_v3_wrong_password_raises_clearly(auth_etcd: EmbeddedEtcd) -> None:
    config = EtcdConfig(endpoints=(auth_etcd.endpoint,), username="root", password="wrong")
    with pytest.raises(EtcdError, match="credentials"):
        await connect_v3(config)
    record("bad_credentials_refused", suite="security")


async def test_v3_without_credentials_cannot_write(auth_etcd: EmbeddedEtcd) -> None:
    client = await connect_v3(EtcdConfig(endpoints=(auth_etcd.endpoint,)))
    try:
        with pytest.raises(Exception, match=r"(?i)user name is empty|permission|auth"):
            await client.put(KEY.encode(), b"{}")
    finally:
        await client.close()
    record("bad_credentials_refused", suite="security")


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_with_password(auth_etcd: EmbeddedEtcd, api: str, lock_cli) -> None:
    flags = ["--endpoint", auth_etcd.endpoint, "--etcd-api", api, "--etcd-username", "root",
             "--etcd-password", ROOT_PASSWORD]  # fmt: skip
    assert lock_cli("lock", "p-" + api, *flags) == Run(0, "", "")
    run = lock_cli("status", *flags)
    assert run.code == 0 and f"p-{api}" in run.out
    assert lock_cli("unlock", "p-" + api, *flags).code == 0


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_wrong_password_is_one_line_and_changes_nothing(
    auth_etcd: EmbeddedEtcd, api: str, lock_cli
) -> None:
    good = ["--endpoint", auth_etcd.endpoint, "--etcd-api", api, "--etcd-username", "root",
            "--etcd-password", ROOT_PASSWORD]  # fmt: skip
    before = lock_cli("status", *good)
    assert before.code == 0
    bad = [*good[:-1], "not-the-password"]
    assert_one_line_refusal(lock_cli("lock", "intruder", *bad))
    assert lock_cli("status", *good) == before


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_lock_without_credentials_is_refused(auth_etcd: EmbeddedEtcd, api: str, lock_cli) -> None:
    run = lock_cli("lock", "intruder", "--endpoint", auth_etcd.endpoint, "--etcd-api", api)
    assert_one_line_refusal(run)


GRPC_FIRST = """
import asyncio, sys
import {module}  # imports aetcd (so grpc) before coreroll.etcd.v3
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdError
from coreroll.etcd.v3 import connect_v3
try:
    asyncio.run(connect_v3(EtcdConfig(endpoints=(sys.argv[1],), cafile=sys.argv[2], timeout=2)))
except EtcdError as exc:
    print("refused:", exc, file=sys.stderr)
"""


@pytest.mark.parametrize("module", ["coreroll.audit", "coreroll.fleet.history"])
def test_grpc_stays_quiet_whatever_is_imported_first(mtls_etcd: TLSEtcd, pki: Pki, module: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    done = subprocess.run([sys.executable, "-c", GRPC_FIRST.format(module=module), mtls_etcd.endpoint, str(pki.ca)],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert done.stderr.startswith("refused:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
