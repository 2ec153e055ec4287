"""The server over TLS (uvicorn's ssl options, certificates from the test PKI) and the Omaha endpoint
behind a secret path suffix, as Nebraska's --api-endpoint-suffix has it."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from lxml import etree

from coreroll.cli import main
from tests.omaha.fixtures import UPDATE_ENGINE_REQUEST
from tests.security.certs import make_pki
from tests.server.conftest import start
from tests.server.helpers import real_payload

SECRET = "s3cret-Path_x"


def test_https_and_the_omaha_secret_path(tmp_path: Path, sqlite_url: str) -> None:
    pki = make_pki(tmp_path / "pki")
    server = start(
        tmp_path, sqlite_url, tls_cert=pki.server_cert, tls_key=pki.server_key, omaha_secret=SECRET
    )
    try:
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=pki.ca), timeout=15) as client:
            reply = client.post(
                f"{server.url}/api/v1/releases",
                params={
                    "version": "3976.0.0",
                    "channel": "stable",
                    "filename": "flatcar_production_update.gz",
                },
                content=real_payload("tls"),
                headers={
                    "Authorization": f"Bearer {server.token}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert reply.status_code == 201, reply.text
            xml = {"Content-Type": "text/xml"}
            # Without the secret, or with a wrong one, the Omaha endpoint is not there.
            for path in ("/v1/update/", "/v1/update", "/v1/update/wrong-secret/", f"/v1/update/{SECRET}x/"):
                missing = client.post(server.url + path, content=UPDATE_ENGINE_REQUEST, headers=xml)
                assert missing.status_code == 404, path
            assert client.get(f"{server.url}/api/v1/instances").json()["total"] == 0
            # With it, update_engine's request is answered, and the payload link is https too.
            for path in (f"/v1/update/{SECRET}/", f"/v1/update/{SECRET}"):
                reply = client.post(server.url + path, content=UPDATE_ENGINE_REQUEST, headers=xml)
                assert reply.status_code == 200, path
            check = etree.fromstring(reply.content).find("app/updatecheck")
            assert check.get("status") == "ok"
            codebase = check.find("urls/url").get("codebase")
            assert codebase == f"{server.url}/packages/3976.0.0/amd64-usr/"
            payload = client.get(codebase + "flatcar_production_update.gz")
            assert payload.status_code == 200 and payload.content == real_payload("tls")
        # A client that does not trust the CA is refused; plain HTTP gets no answer.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz", timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)
    finally:
        server.stop()


def test_server_refuses_bad_tls_flags_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", "other")
    data = ["--data", str(tmp_path / "data")]
    cases = {
        "go together": ["--tls-cert", str(pki.server_cert)],
        "No such file": ["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(pki.server_key)],
        "--tls-key": ["--tls-cert", str(pki.server_cert), "--tls-key", str(other.server_key)],
        "--omaha-secret": ["--omaha-secret", "a/b"],
    }
    for expected, flags in cases.items():
        assert main(["server", *data, *flags]) == 2, flags
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
